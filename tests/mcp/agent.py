"""A scripted agent for the vp-mcp tests (python executor entry point
``tests.mcp.agent:run``); the objective says what it does:

- ``hold``: report progress, then wait until cancelled;
- ``block``: end BLOCKED (the run needs outside input);
- anything else: a few progress steps, then ``result.md`` and ``data.bin``.
"""

from __future__ import annotations

import asyncio


async def run(run, progress):
    objective = run.envelope.objective
    if objective.startswith("hold"):
        await progress("holding until cancelled", {})
        await run.cancel.wait()
        return {"outcome": "cancelled", "summary": "stopped on cancel"}
    if objective.startswith("block"):
        await progress("cannot go on without input", {})
        return {"outcome": "blocked", "summary": "needs input"}
    for step in range(1, 4):
        await progress(f"step {step}/3", {"step": step, "steps": 3})
        await asyncio.sleep(0.05)
    run.mission_dir.mkdir(parents=True, exist_ok=True)
    (run.mission_dir / "result.md").write_text(f"# Result\n\n{objective}\n", encoding="utf-8")
    (run.mission_dir / "data.bin").write_bytes(bytes(range(256)))
    return {"outcome": "completed", "summary": f"did: {objective}"}
