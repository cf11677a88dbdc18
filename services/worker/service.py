"""The worker: one lane, one lease, one dispatcher stream, up to ``capacity`` runs.

    leftovers swept -> lease (registry) -> workspace -> stream (dispatcher) -> runs
                            ^                                  |
                            +- LEASE_SUPERSEDED / trust lapsed: stop all

Before anything else, processes a previous incarnation of this lane's worker
left behind (recorded per run, containment/procs.py) are killed. A term
that is over or no longer trusted stops every run (and every orphan of an
agent re-parented to the worker) before a new term is acquired.

``run_worker(config, stop_event=...)`` returns when ``stop_event`` is set and
the drain is over, or when no lease could be had before it was set. It raises
WorkerFatal for conditions retrying cannot fix (retired session, unusable
workspace).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.common.clock import Clock, SystemClock
from services.worker.agents.memory import ConversationMemory
from services.worker.channel import DRAINING, DispatcherLink
from services.worker.containment import procs as containment
from services.worker.containment.cgroups import CgroupTree
from services.worker.containment.watchdog import Watchdog
from services.worker.lane_config import LaneConfig
from services.worker.runs import RunSet
from services.worker.session import LeaseKeeper, LeaseLost, Term, WorkerFatal
from services.worker.trust import Monotonic

log = logging.getLogger("vp.worker")

#: After the drain deadline, how long results may still take to be acknowledged.
RESULT_FLUSH_GRACE = 3.0
#: How often zombies re-parented to the (subreaper) worker are reaped.
REAP_INTERVAL = 1.0


async def run_worker(config: LaneConfig, *, stop_event: asyncio.Event, force_event: asyncio.Event | None = None,
                     owner: str | None = None, clock: Clock | None = None,
                     monotonic: Monotonic | None = None) -> None:
    """Serve the lane until ``stop_event``; then drain (see drain()).

    ``force_event`` (a second SIGTERM/SIGINT) cuts the drain short."""
    clock = clock or SystemClock()
    extra = {"vp_id": config.vp_id}
    worker_token = containment.new_run_token()
    killed = await asyncio.to_thread(containment.sweep_leftovers, config.run_records_dir, worker_token)
    if killed:
        log.warning("killed %d process(es) a previous worker of %s left behind", killed, config.vp_id, extra=extra)
    cgroups = await asyncio.to_thread(CgroupTree.create, worker_token) if config.containment == "cgroup" else None
    if cgroups is not None:
        log.info("agent containment: a cgroup per run under %s", cgroups.base, extra=extra)
    watchdog = Watchdog(worker_token, config.run_records_dir, cgroups.base if cgroups is not None else None)
    await watchdog.start()
    keeper = LeaseKeeper(config, owner=owner, clock=clock, monotonic=monotonic)
    keeper.trust.on_change = watchdog.lease_runs_out_in
    runs = RunSet(vp_id=config.vp_id, executor=config.build_executor(worker_token=worker_token, cgroups=cgroups),
                  capacity=config.capacity, clock=clock)
    link = DispatcherLink(config, keeper, runs, config.path_policy())
    runs.reporter = link
    log.info("vp-worker %s starting: owner %s, executor %s, capacity %d, dispatcher %s, registry %s",
             config.vp_id, keeper.owner, config.executor, config.capacity, config.dispatcher_addr,
             config.registry_addr, extra=extra)
    reaper = asyncio.create_task(_reap_orphans_forever(), name="orphan-reaper")
    try:
        # The registry keeps the VP's conversation, fenced by this worker's term (agent protocol v1 §8).
        runs.memory = ConversationMemory(runs.memory.agent, read=keeper.get_session, write=keeper.set_conversation)
        term = await keeper.acquire(stop_event)
        while term is not None:
            runs.workspace_dir = _prepare_workspace(term)
            runs.memory.load(term.session)
            term_task = asyncio.create_task(link.serve_term(term), name="term")
            stop_task = asyncio.create_task(stop_event.wait(), name="stop")
            done, _ = await asyncio.wait({term_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if term_task not in done:
                await drain(config, keeper, link, runs, term_task, force_event)
                return
            stop_task.cancel()
            error = term_task.exception()
            if not isinstance(error, LeaseLost):
                term_task.result()  # re-raise anything unexpected
                return
            await _term_over(link, runs, term, str(error))
            if stop_event.is_set():
                log.info("stopping: the lease term was lost; nothing to drain", extra=extra)
                return
            term = await keeper.acquire(stop_event, after_epoch=term.lease_epoch)
        log.info("stopped before a lease was acquired", extra=extra)
    finally:
        if len(runs):  # only on an error path: never leave executors (child processes) behind
            await runs.stop_all("worker exiting")
        await _stop_orphans()
        reaper.cancel()
        await watchdog.close()
        if cgroups is not None:
            await asyncio.to_thread(cgroups.close)
        await link.aclose()
        await keeper.close()


async def _term_over(link: DispatcherLink, runs: RunSet, term: Term, why: str) -> None:
    """The lease term is over: a zombie must not act. Stop every run, drop every
    unacknowledged result, report nothing."""
    dropped = link.forget_results()
    log.error("lease term epoch %d is over (%s): stopping %d run(s), dropping %d unacknowledged result(s); "
              "will acquire a new term", term.lease_epoch, why, len(runs), dropped,
              extra={"vp_id": term.vp_id, "lease_epoch": term.lease_epoch})
    await runs.stop_all("lease term over")
    await _stop_orphans()
    link.forget_results()


async def _stop_orphans() -> None:
    """Kill agent descendants that escaped their run and were re-parented to
    this worker (only a subreaper has any)."""
    left = await asyncio.to_thread(containment.kill_and_wait, containment.orphans)
    if left:
        log.error("orphaned agent processes %s survived SIGKILL", sorted(left))


async def _reap_orphans_forever() -> None:
    while True:
        await asyncio.sleep(REAP_INTERVAL)
        try:
            await asyncio.to_thread(containment.reap_orphans)
        except Exception:  # noqa: BLE001 - best effort, next round retries
            log.exception("reaping orphaned processes failed")


def _prepare_workspace(term: Term) -> Path:
    workspace = Path(term.workspace_dir)
    try:
        workspace.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkerFatal(f"cannot create workspace {str(workspace)!r} of session {term.session_id}: {exc}") from exc
    return workspace


async def drain(config: LaneConfig, keeper: LeaseKeeper, link: DispatcherLink, runs: RunSet,
                term_task: asyncio.Task, force_event: asyncio.Event | None = None) -> None:
    """SIGTERM/SIGINT: send ``draining``, take no more work, let runs finish for
    up to drain_timeout, stop the rest (SIGTERM, then SIGKILL) and hand them
    back (``hand_back``: the dispatcher re-queues them at once, without using an
    attempt), deliver results and hand-backs, close the stream, and release the
    lease only if every one of them was acknowledged (otherwise the lease
    expires and the dispatcher re-queues what is left)."""
    extra = {"vp_id": config.vp_id}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(config.drain_timeout)
    log.info("draining: %d run(s) in flight, up to %gs", len(runs), config.drain_timeout, extra=extra)
    await link.send_draining()

    waiters: set[asyncio.Task] = {term_task}
    idle = asyncio.create_task(runs.wait_idle())
    force = asyncio.create_task(force_event.wait()) if force_event is not None else None
    if force is not None:
        waiters.add(force)
    try:
        await asyncio.wait({idle, *waiters}, timeout=float(config.drain_timeout), return_when=asyncio.FIRST_COMPLETED)
        lost = _term_lost(term_task)
        if lost:
            await _term_over(link, runs, keeper.term or link.term, "lost while draining")  # type: ignore[arg-type]
        elif len(runs):
            stopped = [(run.mission_id, run.attempt) for run in runs.active()]
            log.warning("drain %s: stopping %d run(s) and handing them back",
                        "cut short" if force is not None and force.done() else "timed out", len(stopped), extra=extra)
            await runs.stop_all("drain timeout")
            await _stop_orphans()
            # Only now that their processes are gone may the missions run elsewhere.
            for mission_id, attempt in stopped:
                await link.hand_back(mission_id, attempt, DRAINING)

        if not lost and link.pending_results:
            flush = asyncio.create_task(link.wait_results_acknowledged())
            remaining = max(deadline - loop.time(), RESULT_FLUSH_GRACE)
            await asyncio.wait({flush, *waiters}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            flush.cancel()
            lost = _term_lost(term_task)
        unacked = link.pending_results

        await link.close()
        try:
            await asyncio.wait_for(asyncio.shield(term_task), 5.0)
        except BaseException:  # noqa: BLE001 - LeaseLost/timeout: handled below
            pass
        if not term_task.done():
            term_task.cancel()
            await asyncio.wait({term_task})
        lost = lost or _term_lost(term_task)

        if lost:
            log.info("drained; the lease term was lost, nothing to release", extra=extra)
        elif unacked:
            log.warning("drained; NOT releasing the lease (%d result(s) or hand-back(s) unacknowledged): it "
                        "expires and the dispatcher re-queues what is left", unacked, extra=extra)
        else:
            await keeper.release()
            log.info("drained; lease released", extra=extra)
    finally:
        idle.cancel()
        if force is not None:
            force.cancel()


def _term_lost(task: asyncio.Task) -> bool:
    return task.done() and not task.cancelled() and isinstance(task.exception(), LeaseLost)
