"""Callers are principals with a role.

client    dispatches work and follows the missions it dispatched (Simone and others)
worker    serves the lanes (vp_ids) it is bound to
operator  retires and revives sessions, resets conversations, reads everything
service   a service calling another (the dispatcher reading the registry)

In a certificate a principal is a URI SAN ``spiffe://vp/<role>/<name>``; a worker's
name is the vp_id it serves, e.g. ``spiffe://vp/worker/vp.coder.primary``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

TRUST_DOMAIN = "vp"
SPIFFE_PREFIX = f"spiffe://{TRUST_DOMAIN}/"


class Role(enum.StrEnum):
    CLIENT = "client"
    WORKER = "worker"
    OPERATOR = "operator"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    # The lanes a worker may act for; empty for other roles.
    vp_ids: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return f"{self.role}:{self.name}"

    @property
    def spiffe_id(self) -> str:
        return f"{SPIFFE_PREFIX}{self.role}/{self.name}"


def from_spiffe_id(uri: str) -> Principal | None:
    """The principal a certificate's URI SAN names, or None if it names none of ours."""
    if not uri.startswith(SPIFFE_PREFIX):
        return None
    role_text, sep, name = uri[len(SPIFFE_PREFIX):].partition("/")
    if not sep or not name or "/" in name:
        return None
    try:
        role = Role(role_text)
    except ValueError:
        return None
    return Principal(name, role, frozenset({name}) if role == Role.WORKER else frozenset())
