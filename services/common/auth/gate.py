"""AuthGate: authentication and authorization of every call, in one place.

Authentication: a bearer token in the `authorization` metadata ("Bearer <token>")
names its principal through the hashes-only credentials file; without one, a
client certificate verified by the CA (mTLS) names its principal through its
SPIFFE URI SAN. A token that does not resolve is UNAUTHENTICATED even when a
certificate would: a wrong credential is never silently ignored.

Authorization: the matrix in policy.py. Every denial is logged with the
principal and method and counted in vp_auth_denials_total{service,method,reason}."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.common.auth.policy import MATRIX, OWNER_LABEL, Rule, Scope, field_value
from services.common.auth.principals import Principal, from_spiffe_id
from services.common.auth.tokens import TokenStore
from services.common.errors import VpError
from services.common.telemetry.metrics import AUTH_DENIALS

log = logging.getLogger("vp.auth")

DENIAL_REASONS = ("NO_CREDENTIALS", "INVALID_TOKEN", "MALFORMED_AUTHORIZATION", "ROLE_NOT_ALLOWED", "NOT_YOUR_LANE",
                  "NOT_YOUR_MISSION", "METHOD_NOT_IN_MATRIX")
OWNER_CACHE = 10_000

# Resolves a mission id to str(principal) of its dispatcher ("" if unrecorded, None: no such mission).
OwnerLookup = Callable[[str], Awaitable[str | None]]


class Unauthenticated(VpError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(VpError):
    code = grpc.StatusCode.PERMISSION_DENIED


def _denied(kind: type[VpError], reason: str, message: str, method: str, caller: Principal | None) -> VpError:
    error = kind(message, metadata={"method": method})
    error.reason = reason
    service, _, name = method.lstrip("/").rpartition("/")
    AUTH_DENIALS.labels(service, name, reason).inc()
    log.warning("denied %s to %s: %s (%s)", method, caller or "anonymous", reason, message,
                extra={"method": method, "principal": str(caller or "anonymous"), "reason": reason})
    return error


def _metadata(context) -> list[tuple[str, str]]:
    return [(item[0], item[1]) for item in (context.invocation_metadata() or ())]


def certificate_principal(context) -> Principal | None:
    """The principal named by a verified client certificate's SPIFFE URI SAN, if any."""
    auth = context.auth_context() or {}
    for key in ("peer_uri", "x509_subject_alternative_name"):
        for raw in auth.get(key, ()):
            principal = from_spiffe_id(raw.decode("utf-8", "replace"))
            if principal is not None:
                return principal
    return None


class AuthGate:
    def __init__(self, tokens: TokenStore | None = None, *, owner_of: OwnerLookup | None = None,
                 matrix: dict[str, Rule] | None = None) -> None:
        self.tokens = tokens or TokenStore()
        self.owner_of = owner_of
        self.matrix = MATRIX if matrix is None else matrix
        self._owners: OrderedDict[str, str | None] = OrderedDict()

    # --- authentication --------------------------------------------------------------
    def authenticate(self, method: str, context) -> Principal | None:
        headers = [value for key, value in _metadata(context) if key == "authorization"]
        if headers:
            scheme, _, token = headers[0].partition(" ")
            if len(headers) > 1 or scheme.lower() != "bearer" or not token.strip():
                raise _denied(Unauthenticated, "MALFORMED_AUTHORIZATION",
                              "authorization metadata must be one 'Bearer <token>'", method, None)
            principal = self.tokens.lookup(token.strip())
            if principal is None:
                raise _denied(Unauthenticated, "INVALID_TOKEN", "the bearer token is not valid", method, None)
            return principal
        return certificate_principal(context)

    # --- Gate protocol (services/common/edge/interceptor.py) ----------------------------
    def admit(self, method: str, context) -> Principal | None:
        caller = self.authenticate(method, context)
        rule = self.matrix.get(method)
        if rule is None:
            raise _denied(PermissionDenied, "METHOD_NOT_IN_MATRIX", f"{method} is not open to anyone", method, caller)
        if caller is None:
            if rule.anonymous:
                return None
            raise _denied(Unauthenticated, "NO_CREDENTIALS",
                          "this method needs a bearer token or a client certificate", method, None)
        if caller.role not in rule.roles:
            raise _denied(PermissionDenied, "ROLE_NOT_ALLOWED", f"role {caller.role} may not call {method}", method,
                          caller)
        return caller

    async def check(self, method: str, caller: Principal | None, request: Any, context) -> None:
        rule = self.matrix.get(method)
        if rule is None or caller is None or caller.role not in rule.scoped_roles:
            return
        if rule.scope == Scope.OWN_LANE:
            if not self._names_field(request, rule.field):
                return  # e.g. a Connect message after the hello: the stream is bound by its hello
            vp_id = field_value(request, rule.field)
            if vp_id not in caller.vp_ids:
                raise _denied(PermissionDenied, "NOT_YOUR_LANE", f"{caller} may not act for lane {vp_id!r}", method,
                              caller)
        elif rule.scope == Scope.OWN_MISSION:
            mission_id = field_value(request, rule.field)
            owner = await self._owner(mission_id)
            if owner is not None and owner != str(caller):
                raise _denied(PermissionDenied, "NOT_YOUR_MISSION", f"mission {mission_id!r} was dispatched by "
                              "another caller", method, caller)
        elif rule.scope == Scope.DISPATCH:
            labels = request.envelope.labels
            if labels.get(OWNER_LABEL, str(caller)) != str(caller):
                raise _denied(PermissionDenied, "NOT_YOUR_MISSION", f"label {OWNER_LABEL} is set by the server",
                              method, caller)
            labels[OWNER_LABEL] = str(caller)

    def filter(self, method: str, caller: Principal | None):
        rule = self.matrix.get(method)
        if rule is None or rule.scope != Scope.OWN_RESULTS or caller is None or caller.role not in rule.scoped_roles:
            return None

        async def keep(response):
            if hasattr(response, "missions"):  # ListMissionsResponse: a page may come back shorter
                mine = [m for m in response.missions if m.envelope.labels.get(OWNER_LABEL) == str(caller)]
                del response.missions[:]
                response.missions.extend(mine)
                return response
            event = getattr(response, "event", None)
            if event is None or not event.mission_id:
                return response  # session events: lane status is readable by every client anyway
            return response if await self._owner(event.mission_id) == str(caller) else None

        return keep

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def _names_field(request, path: str) -> bool:
        parent = request
        for part in path.split(".")[:-1]:
            if not parent.HasField(part):
                return False
            parent = getattr(parent, part)
        return True

    async def _owner(self, mission_id: str) -> str | None:
        if not mission_id or self.owner_of is None:
            return None
        if mission_id in self._owners:
            self._owners.move_to_end(mission_id)
            return self._owners[mission_id]
        owner = await self.owner_of(mission_id)
        if owner is not None:  # owners never change; unknown ids are not cached (they may appear)
            self._owners[mission_id] = owner
            if len(self._owners) > OWNER_CACHE:
                self._owners.popitem(last=False)
        return owner

