"""Channel ownership, deadlines and the retry loop shared by every client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.client.errors import ClientError, is_transient, retry_delay_of
from services.client.retry import RetryPolicy
from services.common.grpc_options import CHANNEL_OPTIONS

log = logging.getLogger("vp.client")

DEFAULT_TIMEOUT = 10.0


class GrpcClient:
    """Owns (or borrows) one grpc.aio channel. Use ``async with`` or ``await close()``.

    ``timeout`` is the per-call deadline in seconds for unary calls. The channel
    is opened lazily on first use so it binds to the running event loop.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        channel: grpc.aio.Channel | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.metadata = tuple(metadata)
        self._channel = channel
        self._owns_channel = channel is None
        self._stubs: dict[type, Any] = {}

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        return self._channel

    def _stub(self, stub_type: type) -> Any:
        stub = self._stubs.get(stub_type)
        if stub is None:
            stub = self._stubs[stub_type] = stub_type(self.channel)
        return stub

    async def close(self) -> None:
        if self._channel is not None and self._owns_channel:
            await self._channel.close()
        self._channel = None
        self._stubs.clear()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _sleep_before_retry(self, method: str, error: grpc.RpcError, failures: int) -> None:
        delay = self.retry.backoff(failures, retry_delay_of(error))
        log.info("%s: %s (%s), retry %d in %.2fs", method, error.code().name, error.details(), failures, delay)
        await asyncio.sleep(delay)

    async def _paged(self, method: str, call: Callable[..., Awaitable[Any]], request: Any, items: str, *,
                     limit: int | None, timeout: float | None) -> AsyncIterator[Any]:
        """Walk every page of a List* call (page_token in, next_page_token out), at most limit items."""
        count = 0
        while True:
            response = await self._unary(method, call, request, timeout=timeout)
            for item in getattr(response, items):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    async def _unary(
        self,
        method: str,
        call: Callable[..., Awaitable[Any]],
        request: Any,
        *,
        timeout: float | None = None,
        retryable: bool = True,
        extra_metadata: list[tuple[str, str]] | None = None,
    ) -> Any:
        """One unary call with a deadline; transient failures are retried when the
        call is safe to repeat. Everything else raises ClientError."""
        failures = 0
        while True:
            try:
                metadata = [*(self.metadata or ()), *(extra_metadata or ())]
                return await call(request, timeout=timeout if timeout is not None else self.timeout,
                                  metadata=metadata or None)
            except grpc.aio.AioRpcError as error:
                failures += 1
                if not (retryable and is_transient(error) and failures < self.retry.max_attempts):
                    raise ClientError.from_rpc_error(error, method=method) from error
                await self._sleep_before_retry(method, error, failures)
