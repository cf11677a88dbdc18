"""Field checks every request passes at the edge, whatever its message type.

They walk the message by its descriptor, so a field added to the contract is
covered the day it is added:
- google.protobuf.Timestamp within 0001-01-01 .. 9999-12-31, nanos 0..999999999;
- google.protobuf.Duration within +-MAX_DURATION, nanos in range and with the
  sign of the seconds;
- float and double fields finite (NaN and infinity refused), Struct numbers too;
- strings free of NUL (PostgreSQL text cannot hold it; no identifier needs it).
Semantic rules (a lane name, a mission id) stay with the services."""

from __future__ import annotations

import math
from datetime import timedelta

from google.protobuf.descriptor import FieldDescriptor

from services.common.errors import FieldViolation

TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"
# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what a datetime can hold.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
# Long enough for any TTL, budget or wait, short enough that "now + duration"
# always stays a valid datetime.
MAX_DURATION = timedelta(days=3650)
MAX_NANOS = 999_999_999
MAX_VIOLATIONS = 20

_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def violations(message) -> list[FieldViolation]:
    """Every edge-rule violation in message, at most MAX_VIOLATIONS, with field paths."""
    found: list[FieldViolation] = []
    _walk(message, "", found)
    return found[:MAX_VIOLATIONS]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _walk(message, prefix: str, found: list[FieldViolation]) -> None:
    if len(found) >= MAX_VIOLATIONS:
        return
    full_name = message.DESCRIPTOR.full_name
    if full_name == TIMESTAMP:
        _check_timestamp(message, prefix, found)
        return
    if full_name == DURATION:
        _check_duration(message, prefix, found)
        return
    for field, value in message.ListFields():
        path = _join(prefix, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key in value:
                _check_scalar(field.message_type.fields_by_name["key"], key, f"{path}[{key!r}]", found)
                if value_field.message_type is not None:
                    _walk(value[key], f"{path}[{key!r}]", found)
                else:
                    _check_scalar(value_field, value[key], f"{path}[{key!r}]", found)
            continue
        repeated = field.is_repeated
        for index, item in enumerate(value if repeated else [value]):
            item_path = f"{path}[{index}]" if repeated else path
            if field.message_type is not None:
                _walk(item, item_path, found)
            else:
                _check_scalar(field, item, item_path, found)


def _check_scalar(field, value, path: str, found: list[FieldViolation]) -> None:
    if field.type in _FLOATS and not math.isfinite(value):
        found.append(FieldViolation(path, "must be a finite number (NaN and infinity are refused)"))
    elif field.type == FieldDescriptor.TYPE_STRING and "\x00" in value:
        found.append(FieldViolation(path, "must not contain NUL characters"))


def _check_timestamp(ts, path: str, found: list[FieldViolation]) -> None:
    if not MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS:
        found.append(FieldViolation(path, "must be within 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z"))
    elif not 0 <= ts.nanos <= MAX_NANOS:
        found.append(FieldViolation(path, f"nanos must be within 0..{MAX_NANOS}"))


def _check_duration(duration, path: str, found: list[FieldViolation]) -> None:
    limit = int(MAX_DURATION.total_seconds())
    if not -limit <= duration.seconds <= limit:
        found.append(FieldViolation(path, f"must be within +-{MAX_DURATION.days} days"))
    elif not -MAX_NANOS <= duration.nanos <= MAX_NANOS:
        found.append(FieldViolation(path, f"nanos must be within -{MAX_NANOS}..{MAX_NANOS}"))
    elif (duration.seconds > 0 > duration.nanos) or (duration.seconds < 0 < duration.nanos):
        found.append(FieldViolation(path, "seconds and nanos must have the same sign"))
