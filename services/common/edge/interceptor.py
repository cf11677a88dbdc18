"""EdgeInterceptor: the one server interceptor every service shares.

gRPC Python deserializes a request before any servicer code runs, and a
deserializer that raises becomes UNKNOWN with a Python class name in the
message. So the interceptor swaps in a deserializer that never raises (it
returns an Undecodable marker) and a behavior that turns the marker into
INVALID_ARGUMENT with ErrorInfo. The same wrapper runs the edge checks
(checks.py) and then the gate (authentication + authorization), so a servicer
only ever sees well-formed requests from callers allowed to make them.

Streaming requests are checked message by message as the servicer reads them;
a bad message raises a VpError from the iterator, which the servicer's own
error handling (or the wrapper below) turns into its status."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc
from grpc_status import rpc_status

from services.common.edge.checks import violations
from services.common.errors import FieldViolation, InvalidArgument, VpError, internal_status

log = logging.getLogger(__name__)

UNDECODABLE = "UNDECODABLE_REQUEST"


class Undecodable:
    """Stands in for a request whose bytes did not parse as the method's message."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as exc:  # noqa: BLE001 - any decode failure is the caller's bad bytes
            # Keep the class name out of the reply; the log has it.
            log.debug("undecodable request: %r", exc)
            return Undecodable("the request bytes are not a valid message of the method's request type")

    return decode


def check_request(message: Any) -> None:
    """Raise InvalidArgument for an undecodable message or one breaking an edge rule."""
    if isinstance(message, Undecodable):
        raise InvalidArgument(FieldViolation("request", message.error), reason=UNDECODABLE)
    found = violations(message)
    if found:
        raise InvalidArgument(found)


class Gate(Protocol):
    """Authentication and authorization of one call (services/common/auth)."""

    def admit(self, method: str, context: grpc.aio.ServicerContext) -> Any:
        """Who is calling; raises Unauthenticated / PermissionDenied. The result is passed to check()."""

    async def check(self, method: str, caller: Any, request: Any, context: grpc.aio.ServicerContext) -> None:
        """Per-request rules (a worker's own lanes, a client's own missions); raises PermissionDenied."""

    def filter(self, method: str, caller: Any) -> Callable[[Any], Any] | None:
        """For streamed or listed responses a caller may see only part of: an async
        function mapping a response to itself, a trimmed copy, or None (drop)."""


async def abort(context: grpc.aio.ServicerContext, error: VpError):
    await context.abort_with_status(rpc_status.to_status(error.to_rpc_status()))


_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, gate: Gate | None = None) -> None:
        self.gate = gate
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        attribute, factory = _KINDS[(bool(handler.request_streaming), bool(handler.response_streaming))]
        behavior = getattr(handler, attribute)
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            if handler.request_streaming or handler.response_streaming:
                return handler  # a synchronous streaming handler: not ours to wrap
            # The generated base class's stubs for methods a servicer does not implement.
            behavior = _as_coroutine(behavior)
        wrapped = self._behavior(behavior, method, bool(handler.request_streaming))
        return factory(wrapped, request_deserializer=safe_deserializer(handler.request_deserializer),
                       response_serializer=handler.response_serializer)

    def _behavior(self, behavior, method: str, request_streaming: bool):
        gate = self.gate

        async def admit(request, context):
            """The caller, and the request the servicer gets (checked, or a checking iterator)."""
            caller = gate.admit(method, context) if gate is not None else None
            if request_streaming:
                return caller, _checked_stream(request, method, caller, context, gate)
            check_request(request)
            if gate is not None:
                await gate.check(method, caller, request, context)
            return caller, request

        if inspect.isasyncgenfunction(behavior):
            async def stream_behavior(request, context):
                try:
                    caller, request = await admit(request, context)
                    keep = gate.filter(method, caller) if gate is not None else None
                    async for item in behavior(request, context):
                        if keep is not None:
                            item = await keep(item)
                            if item is None:
                                continue
                        yield item
                except VpError as error:
                    await abort(context, error)
                except (grpc.aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception:  # noqa: BLE001 - logged here, never a traceback on the wire
                    log.exception("unhandled error in %s", method)
                    await context.abort_with_status(rpc_status.to_status(internal_status(f"internal error in {method}")))

            return stream_behavior

        async def unary_behavior(request, context):
            try:
                caller, request = await admit(request, context)
                response = await behavior(request, context)
                keep = gate.filter(method, caller) if gate is not None else None
                return response if keep is None else await keep(response)
            except VpError as error:
                await abort(context, error)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:  # noqa: BLE001 - logged here, never a traceback on the wire
                log.exception("unhandled error in %s", method)
                await context.abort_with_status(rpc_status.to_status(internal_status(f"internal error in {method}")))

        return unary_behavior


class Unimplemented(VpError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


def _as_coroutine(behavior):
    async def call(request, context):
        try:
            return behavior(request, context)
        except NotImplementedError:
            raise Unimplemented("this server does not implement the method") from None

    return call


async def _checked_stream(requests: AsyncIterator[Any], method: str, caller: Any, context, gate: Gate | None):
    async for message in requests:
        check_request(message)
        if gate is not None:
            await gate.check(method, caller, message, context)
        yield message
