"""vp_rpc_duration_seconds for every RPC a server handles: a grpc.aio server
interceptor that times each call to its end (a streaming call to its last
message) and labels it with the final status code name (OK, INVALID_ARGUMENT...).

Only methods a servicer registered are observed, so a client calling made-up
method names cannot grow the label set."""

from __future__ import annotations

import asyncio
import inspect
import time

import grpc

from services.common.telemetry.metrics import RPC_DURATION

_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def code_name(code) -> str:
    """A status code (grpc.StatusCode, its integer, or None = not set) by name."""
    if code is None:
        return grpc.StatusCode.OK.name
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int) and code in _BY_VALUE:
        return _BY_VALUE[code].name
    return grpc.StatusCode.UNKNOWN.name


def _context_code(context) -> str:
    try:
        return code_name(context.code())
    except (AttributeError, NotImplementedError):
        return grpc.StatusCode.UNKNOWN.name


def _failure_code(error: BaseException, context) -> str:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    if isinstance(error, grpc.aio.AbortError):
        return _context_code(context)
    return grpc.StatusCode.UNKNOWN.name  # what gRPC answers for an unhandled exception


def _timed(behavior, observe):
    """Wrap one handler behavior keeping its kind: aio inspects whether it is a
    coroutine function or an async generator function to know how to call it."""
    if inspect.isasyncgenfunction(behavior):
        async def stream_behavior(request, context):
            start = time.perf_counter()
            code = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as error:
                code = _failure_code(error, context)
                raise
            finally:
                observe(code or _context_code(context), time.perf_counter() - start)

        return stream_behavior
    if inspect.iscoroutinefunction(behavior):
        async def unary_behavior(request, context):
            start = time.perf_counter()
            code = None
            try:
                return await behavior(request, context)
            except BaseException as error:
                code = _failure_code(error, context)
                raise
            finally:
                observe(code or _context_code(context), time.perf_counter() - start)

        return unary_behavior
    return None  # a synchronous handler: left as it is


_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        # full method -> (the servicer's handler, its timed copy): built once per method.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        full_method = handler_call_details.method
        cached = self._wrapped.get(full_method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _instrument(handler, full_method)
        self._wrapped[full_method] = (handler, wrapped)
        return wrapped


def _instrument(handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
    service, _, method = full_method.lstrip("/").rpartition("/")
    attribute, factory = _KINDS[(bool(handler.request_streaming), bool(handler.response_streaming))]
    by_code: dict[str, object] = {}

    def observe(code: str, seconds: float) -> None:
        child = by_code.get(code)
        if child is None:
            child = by_code[code] = RPC_DURATION.labels(service, method, code)
        child.observe(seconds)

    timed = _timed(getattr(handler, attribute), observe)
    if timed is None:
        return handler
    return factory(timed, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)
