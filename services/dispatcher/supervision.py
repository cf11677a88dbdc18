"""The dispatcher's slow safety net (every supervise_interval, off the hot path):
streams whose lease expired without a heartbeat (liveness.py), deadlines, runs
whose worker lease ended, runs a worker stopped reporting, and
queued work that no push reached (e.g. dispatched through another replica).
At start it also reconciles RUNNING missions left by a previous process."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from services.common.states import MissionState
from services.dispatcher import liveness, transitions
from services.dispatcher.core import DispatcherCore

log = logging.getLogger(__name__)
M = MissionState


class Supervisor:
    def __init__(self, core: DispatcherCore) -> None:
        self.core = core
        self.store = core.store

    async def tick(self) -> None:
        # First: a silent stream's runs are then recovered by this same pass.
        if liveness.end_silent_streams(self.core.hub, self.core.clock.now()):
            self.core.streams_changed()
        await self.expire_deadlines()
        await self.recover_lost_runs(reconciling=False)
        await self.requeue_unreported()
        for lane in list(self.core.hub.connections):
            self.core.request_pump(lane, look=True)
        await self.core.lane_states()  # refreshes the lane gauges
        self.core.streams_changed()

    async def run_forever(self) -> None:
        interval = self.core.settings.supervise_interval.total_seconds()
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervision tick failed; retrying next interval")
            await asyncio.sleep(interval)

    async def expire_deadlines(self) -> int:
        now = self.core.clock.now()
        due = await self.store.aread(lambda tx: tx.missions_past_deadline(now, [M.QUEUED, M.RUNNING, M.BLOCKED]))
        for candidate in due:
            await self.core.transact(lambda tx, routes, mission_id=candidate.mission_id: (
                None, transitions.time_out(tx, mission_id, now, routes)))
        return len(due)

    async def recover_lost_runs(self, *, reconciling: bool) -> int:
        """RUNNING missions whose lease term is over: re-queue, cancel or give up."""
        running = await self.store.aread(lambda tx: tx.missions_in_states([M.RUNNING]))
        by_lane: dict[str, list] = defaultdict(list)
        for record in running:
            if self.core.hub.current(record.lane, record.worker_owner, record.lease_epoch) is None:
                by_lane[record.lane].append(record)
        handled = 0
        for lane, records in by_lane.items():
            try:
                lease = await self.core.registry.lease(lane)
            except Exception as error:  # registry down: cannot tell, so wait
                log.warning("cannot check lease of %s: %s", lane, error)
                continue
            lost = [r for r in records if not (lease.lease_live and lease.lease_owner == r.worker_owner
                                                and lease.lease_epoch == r.lease_epoch)]
            for candidate in lost:
                now = self.core.clock.now()
                await self.core.transact(lambda tx, routes, candidate=candidate, now=now: (
                    None, transitions.recover(tx, candidate.mission_id, candidate.run_id, now, routes,
                                              reconciling=reconciling)))
                handled += 1
        if handled:
            log.info("%s %d run(s) whose worker lease ended", "reconciled" if reconciling else "recovered", handled)
        return handled

    async def requeue_unreported(self) -> int:
        """A run the worker no longer reports (an assignment lost with a dropped
        stream, or a run that vanished) is re-queued after a grace period."""
        grace = self.core.settings.heartbeat_interval * 2
        handled = 0
        for connection in list(self.core.hub.connections.values()):
            if connection.reported_at is None:
                continue
            missing = [mid for mid, assigned in connection.assigned_at.items()
                       if mid not in connection.reported and connection.reported_at - assigned > grace]
            for mission_id in missing:
                now = self.core.clock.now()
                await self.core.transact(lambda tx, routes, mission_id=mission_id, owner=connection.owner, now=now: (
                    None, transitions.drop_unreported(tx, mission_id, owner, now, routes)))
                connection.running.pop(mission_id, None)
                connection.assigned_at.pop(mission_id, None)
                handled += 1
        return handled
