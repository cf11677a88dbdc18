"""The worker's watchdog: a small separate process that kills the worker's agents
when the worker cannot.

A worker that is frozen (SIGSTOP, a stalled VM) or killed cannot stop its own
agents. The watchdog can, because it is another process:

* the worker writes ``deadline <seconds>`` lines on the watchdog's stdin: the
  CLOCK_MONOTONIC time at which its current lease runs out if no renewal is
  confirmed (trusted_until + the safety margin, i.e. the lease expiry as the
  worker knows it). When that time passes without a newer line, the watchdog
  SIGKILLs every process carrying the worker's token: nothing of this worker
  runs past its lease, so nothing overlaps with a worker that takes the lease
  over, even if this one is frozen;
* when stdin reaches EOF (the worker exited or died, kill -9 included), the
  watchdog kills every process carrying the worker's token, drops their run
  records, and exits.

It ignores SIGINT/SIGTERM (a Ctrl-C or a drain of the worker's group must not
stop it before the worker) and lives in its own session.

With ``--containment cgroup`` it also gets the worker's cgroup subtree and
kills that as a whole (then removes it when the worker is gone).

    python -m services.worker.containment.watchdog WORKER_TOKEN RECORDS_DIR [CGROUP]
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import sys
import time
from pathlib import Path

from services.worker.containment import procs as containment
from services.worker.containment.cgroups import CgroupTree

log = logging.getLogger(__name__)

KILL_TIMEOUT = 10.0


def _agents(token: str):
    return lambda: containment.members(worker_token=token)


def _kill_all(token: str, why: str, cgroup: str = "") -> int:
    if cgroup:
        CgroupTree.kill(cgroup, KILL_TIMEOUT)
    found = _agents(token)()
    if found:
        print(f"vp-worker watchdog: {why}: killing {len(found)} agent process(es) {sorted(found)}",
              file=sys.stderr, flush=True)
        containment.kill_and_wait(_agents(token), KILL_TIMEOUT)
    return len(found)


def _drop_records(token: str, records_dir: str) -> None:
    records = containment.RunRecords(records_dir or None)
    for record in records.load():
        if record.get("worker_token") == token:
            records.remove(str(record.get("run_token") or ""))


def serve(token: str, records_dir: str, stdin=None, cgroup: str = "") -> int:
    stdin = stdin if stdin is not None else sys.stdin.buffer
    fd = stdin.fileno()
    deadline: float | None = None
    fired = False
    buffer = b""
    while True:
        timeout = None if deadline is None or fired else max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            if deadline is not None and not fired and time.monotonic() >= deadline:
                _kill_all(token, "the worker's lease ran out with no renewal confirmed", cgroup)
                fired = True
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            _kill_all(token, "the worker is gone", cgroup)
            _drop_records(token, records_dir)
            CgroupTree.remove(cgroup)
            return 0
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            parts = line.decode(errors="replace").split()
            if len(parts) == 2 and parts[0] == "deadline":
                try:
                    deadline, fired = float(parts[1]), False
                except ValueError:
                    pass
            elif parts == ["clear"]:
                deadline, fired = None, False


class Watchdog:
    """The worker's handle on its watchdog process."""

    def __init__(self, worker_token: str, records_dir: Path | str | None, cgroup: Path | str | None = None) -> None:
        self.worker_token = worker_token
        self.records_dir = str(records_dir or "")
        self.cgroup = str(cgroup or "")
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> bool:
        if not Path("/proc").is_dir():
            return False
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.worker.containment.watchdog", self.worker_token,
                self.records_dir, *([self.cgroup] if self.cgroup else []), stdin=asyncio.subprocess.PIPE,
                start_new_session=True)
        except OSError as exc:
            log.warning("cannot start the agent watchdog: %s", exc)
            return False
        containment.manage(self.proc.pid)
        return True

    def lease_runs_out_in(self, seconds: float | None) -> None:
        """The lease, as the worker knows it, runs out this many seconds from now
        (None: no lease, nothing to enforce)."""
        if self.proc is None or self.proc.stdin is None or self.proc.stdin.is_closing():
            return
        line = "clear\n" if seconds is None else f"deadline {time.monotonic() + max(0.0, seconds):.6f}\n"
        try:
            self.proc.stdin.write(line.encode())
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass

    async def close(self, timeout: float = KILL_TIMEOUT + 5) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        containment.unmanage(self.proc.pid)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m services.worker.containment.watchdog WORKER_TOKEN RECORDS_DIR [CGROUP]",
              file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    return serve(args[0], args[1], cgroup=args[2] if len(args) == 3 else "")


if __name__ == "__main__":
    sys.exit(main())
