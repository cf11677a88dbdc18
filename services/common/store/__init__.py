"""The durable store: sessions, missions, the event log and consumer cursors,
on SQLite or PostgreSQL. Services use SqlStore through the Store/Tx protocols."""

from services.common.store.engine import create_engine_for
from services.common.store.interface import Store, Tx
from services.common.store.migrate import current_revision, upgrade
from services.common.store.records import EventRecord, MissionRecord, NewEvent, SessionRecord
from services.common.store.sql_store import SqlStore, SqlTx

__all__ = [
    "EventRecord",
    "MissionRecord",
    "NewEvent",
    "SessionRecord",
    "SqlStore",
    "SqlTx",
    "Store",
    "Tx",
    "create_engine_for",
    "current_revision",
    "upgrade",
]
