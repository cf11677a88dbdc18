"""Identifier rules shared by every service, checked at the edge."""

from __future__ import annotations

import re

from services.common.errors import FieldViolation

VP_ID_PATTERN = re.compile(r"^vp(\.[a-z0-9][a-z0-9_-]{0,62}){1,4}$")
MISSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
OWNER_MAX = 256


def check_vp_id(value: str, field: str = "vp_id") -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "required")]
    if not VP_ID_PATTERN.match(value):
        return [FieldViolation(field, f"must match {VP_ID_PATTERN.pattern} (e.g. vp.coder.primary)")]
    return []


def check_mission_id(value: str, field: str = "mission_id", *, required: bool = True) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "required")] if required else []
    if not MISSION_ID_PATTERN.match(value):
        return [FieldViolation(field, f"must match {MISSION_ID_PATTERN.pattern}")]
    return []


def check_text(value: str, field: str, *, max_len: int, required: bool = True) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(field, "required")] if required else []
    if len(value) > max_len:
        return [FieldViolation(field, f"at most {max_len} characters")]
    if any(ord(ch) < 32 for ch in value):
        return [FieldViolation(field, "must not contain control characters")]
    return []
