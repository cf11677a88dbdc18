"""The durable store: sessions, missions, the event log and consumer cursors,
on SQLite or PostgreSQL. Services use SqlStore through the Store/Tx protocols.

Exports resolve lazily so `python -m services.common.store.migrate` does not
import the migrate module twice (once via this package, once as __main__).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.common.store.engine import create_engine_for
    from services.common.store.interface import Store, Tx
    from services.common.store.migrate import current_revision, upgrade
    from services.common.store.records import EventRecord, MissionRecord, NewEvent, SessionRecord
    from services.common.store.sql_store import SqlStore, SqlTx

_EXPORTS = {
    "EventRecord": "records",
    "MissionRecord": "records",
    "NewEvent": "records",
    "SessionRecord": "records",
    "SqlStore": "sql_store",
    "SqlTx": "sql_store",
    "Store": "interface",
    "Tx": "interface",
    "create_engine_for": "engine",
    "current_revision": "migrate",
    "upgrade": "migrate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
