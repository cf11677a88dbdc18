"""Conversions between aware UTC datetimes and protobuf Timestamp/Duration.
Naive datetimes are refused everywhere: mixing them once crashed the mission
listing (seed 003)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp


class NaiveDatetimeError(ValueError):
    pass


def require_utc(value: datetime) -> datetime:
    """Return value in UTC; raise on a naive datetime instead of guessing its zone."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(f"naive datetime refused: {value!r}; use timezone-aware UTC")
    return value.astimezone(timezone.utc)


def to_timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(require_utc(value))
    return ts


def from_timestamp(ts: Timestamp | None) -> datetime | None:
    """An unset (zero) Timestamp reads as None."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=timezone.utc)


def to_duration(value: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(value)
    return d


def from_duration(d: Duration | None, default: timedelta | None = None) -> timedelta | None:
    if d is None or (d.seconds == 0 and d.nanos == 0):
        return default
    return d.ToTimedelta()
