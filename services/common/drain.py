"""Ending long calls when a server drains.

A WaitMission or a followed event stream can stay open for minutes; grpc's own
stop() cancels such calls with a bare UNAVAILABLE "Cancelling all calls" that
tells the client nothing. The DrainInterceptor races every long call against the
server's drain signal and ends it with UNAVAILABLE, ErrorInfo DRAINING and a
RetryInfo, so a client knows to retry (on another replica, or here after the
restart). Short unary calls are left to finish within the stop grace: cancelling
them could cut a transaction in half.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable

import grpc
from grpc_status import rpc_status

from services.common.errors import Draining


class DrainSignal:
    """Set once, when the server starts ending its long calls."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


async def _abort_draining(context) -> None:
    error = Draining("server is shutting down; retry on another replica or after the restart")
    await context.abort_with_status(rpc_status.to_status(error.to_rpc_status()))


async def _race(awaitable, drain: DrainSignal):
    """(True, result) if awaitable finished first; (False, None) if the drain came
    first (the awaitable is then cancelled)."""
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(drain.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return True, work.result()
        return False, None
    finally:
        stop.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)


def _draining(behavior, drain: DrainSignal):
    if inspect.isasyncgenfunction(behavior):
        async def stream_behavior(request, context):
            if drain.is_set():
                await _abort_draining(context)
            items = behavior(request, context)
            try:
                while True:
                    try:
                        finished, item = await _race(items.__anext__(), drain)
                    except StopAsyncIteration:
                        return
                    if not finished:
                        await _abort_draining(context)
                    yield item
            finally:
                await items.aclose()

        return stream_behavior
    if inspect.iscoroutinefunction(behavior):
        async def unary_behavior(request, context):
            if drain.is_set():
                await _abort_draining(context)
            finished, result = await _race(behavior(request, context), drain)
            if not finished:
                await _abort_draining(context)
            return result

        return unary_behavior
    return None


_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


class DrainInterceptor(grpc.aio.ServerInterceptor):
    """Makes every response-streaming method, and the unary ones named in
    long_unary_methods ("/pkg.Service/Method"), end with DRAINING once drain is set."""

    def __init__(self, drain: DrainSignal, long_unary_methods: Iterable[str] = ()) -> None:
        self.drain = drain
        self.long_unary = frozenset(long_unary_methods)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if not (handler.response_streaming or method in self.long_unary):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        attribute, factory = _KINDS[(bool(handler.request_streaming), bool(handler.response_streaming))]
        behavior = _draining(getattr(handler, attribute), self.drain)
        wrapped = handler if behavior is None else factory(
            behavior, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
        self._wrapped[method] = (handler, wrapped)
        return wrapped
