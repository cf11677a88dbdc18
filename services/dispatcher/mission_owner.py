"""Who dispatched a mission, for the gate's OWN_MISSION and OWN_RESULTS rules
(services/common/auth/policy.py): the label the edge stamped on DispatchMission."""

from __future__ import annotations

from services.common.auth.gate import OwnerLookup
from services.common.auth.policy import OWNER_LABEL
from services.common.store.interface import Store


def owner_lookup(store: Store) -> OwnerLookup:
    async def owner_of(mission_id: str) -> str | None:
        record = await store.aread(lambda tx: tx.get_mission(mission_id))
        if record is None:
            return None
        return str((record.envelope.get("labels") or {}).get(OWNER_LABEL, ""))

    return owner_of
