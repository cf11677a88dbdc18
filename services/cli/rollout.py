"""vpctl rollout snapshot: write a JSON snapshot and a markdown evidence row for a
lane, evaluate the promotion gates, and exit non-zero when one fails, so the
command can gate a deploy."""

from __future__ import annotations

import json
from pathlib import Path

from services.cli import exit_codes
from services.cli.rollout_evidence import MARKDOWN_HEADER, Gates, take_snapshot

DEFAULTS = Gates()


def add_parser(command) -> None:
    p = command("rollout", "rollout evidence: `rollout snapshot` evaluates the promotion gates of a lane")
    p.add_argument("action", choices=["snapshot"], help="what to do")
    p.add_argument("--vp-id", default="vp.coder.primary", help="lane whose missions are considered")
    p.add_argument("--window", type=int, default=DEFAULTS.min_missions,
                   help="the last N terminal missions are considered")
    p.add_argument("--max-fallback-rate", type=float, default=0.10, help="gate: highest fallback rate allowed")
    p.add_argument("--max-consecutive-failures", type=int, default=3,
                   help="gate: this many VP failures in a row count as sustained failures")
    p.add_argument("--min-missions", type=int, default=DEFAULTS.min_missions,
                   help="gate: fewer terminal missions in the window is not enough evidence")
    p.add_argument("--max-p95-seconds", type=float, default=None, help="gate (optional): highest p95 latency")
    p.add_argument("--out", default="rollout-evidence", help="folder for snapshot JSON files and evidence.md")


async def cmd_rollout(args, ctx) -> int:
    missions = [m async for m in ctx.mission_control.list(vp_id=args.vp_id, page_size=500)]
    gates = Gates(max_fallback_rate=args.max_fallback_rate, max_consecutive_failures=args.max_consecutive_failures,
                  min_missions=args.min_missions, max_p95_seconds=args.max_p95_seconds)
    snapshot = take_snapshot(args.vp_id, missions, window=args.window, gates=gates)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = snapshot.taken_at.replace(":", "").replace("+0000", "Z")
    target = out / f"snapshot-{args.vp_id}-{stamp}.json"
    suffix = 1
    while target.exists():  # two snapshots within one second keep both
        suffix += 1
        target = out / f"snapshot-{args.vp_id}-{stamp}-{suffix}.json"
    target.write_text(json.dumps(snapshot.to_dict(), indent=2) + "\n")
    evidence = out / "evidence.md"
    if not evidence.exists():
        evidence.write_text(MARKDOWN_HEADER + "\n")
    with evidence.open("a") as handle:
        handle.write(snapshot.markdown_row() + "\n")
    if args.json:
        print(json.dumps(snapshot.to_dict()))
    else:
        print(MARKDOWN_HEADER)
        print(snapshot.markdown_row())
        for name, gate in snapshot.gates.items():
            print(f"  {'ok  ' if gate['passed'] else 'FAIL'} {name}: {gate['value']} (limit {gate['limit']})")
    return exit_codes.OK if snapshot.passed else exit_codes.NOT_COMPLETED
