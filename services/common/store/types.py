"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no timezone-aware timestamp type: SQLAlchemy stores a fixed-width
ISO string and drops tzinfo. Storing every value converted to UTC keeps those
strings ordered by instant, so range filters and ORDER BY agree with
PostgreSQL's timestamptz.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from services.common.timeutil import require_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive values are refused
    (timeutil.NaiveDatetimeError) rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = require_utc(value)
        if dialect.name == "sqlite":
            # The SQLite string format cannot carry an offset; UTC is implied.
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        # PostgreSQL answers in the session TimeZone, which need not be UTC.
        return value.astimezone(timezone.utc)


def json_type() -> Any:
    """JSON on SQLite, JSONB on PostgreSQL (compact, and indexable if ever needed)."""
    return JSON().with_variant(JSONB(), "postgresql")
