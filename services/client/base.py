"""Channel ownership, deadlines and the retry loop shared by every client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.client.errors import ClientError, is_transient, retry_delay_of
from services.client.retry import RetryPolicy
from services.common.auth.datadir import resolve_client_security
from services.common.grpc_options import CHANNEL_OPTIONS
from services.common.security import ChannelSecurity

log = logging.getLogger("vp.client")

DEFAULT_TIMEOUT = 10.0


class GrpcClient:
    """Owns (or borrows) one grpc.aio channel. Use ``async with`` or ``await close()``.

    ``timeout`` (seconds) bounds every unary call *including its retries*: one
    overall deadline, not one per attempt. Streams and waits use it as the
    longest time they may go without reaching the server. The channel is opened
    lazily on first use so it binds to the running event loop.
    ``security`` is TLS and credentials; None resolves them like every client
    (services/common/auth/datadir.resolve_client_security: VP_TLS_* variables,
    else the data dir `vpctl up` wrote, else plaintext).
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        channel: grpc.aio.Channel | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
        security: ChannelSecurity | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.metadata = tuple(metadata)
        self.security = security
        self._channel = channel
        self._owns_channel = channel is None
        self._stubs: dict[type, Any] = {}

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            if self.security is None:
                self.security = resolve_client_security()
            self._channel = self.security.aio_channel(self.address, CHANNEL_OPTIONS)
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

    async def _sleep_before_retry(self, method: str, error: grpc.RpcError, failures: int,
                                  deadline: float | None = None) -> None:
        """Back off before retry number ``failures``; raises ClientError for the
        error instead when the retry could not start before ``deadline`` (loop time)."""
        delay = self.retry.backoff(failures, retry_delay_of(error))
        if deadline is not None and asyncio.get_running_loop().time() + delay >= deadline:
            raise ClientError.from_rpc_error(error, method=method) from error
        log.info("%s: %s (%s), retry %d in %.2fs", method, error.code().name, error.details(), failures, delay)
        await asyncio.sleep(delay)

    def _deadline(self, timeout: float | None) -> float:
        return asyncio.get_running_loop().time() + (timeout if timeout is not None else self.timeout)

    def _out_of_time(self, method: str, deadline: float, total: float) -> ClientError:
        return ClientError(grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.address} gave no answer within {total:g}s",
                           reason="DEADLINE_EXCEEDED", method=method)

    async def _reachable(self, method: str, deadline: float) -> None:
        """Wait until the channel is connected, at most until ``deadline``: a
        stream or wait that may legitimately stay silent for minutes must not
        sit that long on a server that never answers."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self.channel.channel_ready(), max(0.0, remaining))
        except asyncio.TimeoutError:
            raise ClientError(grpc.StatusCode.UNAVAILABLE, f"cannot reach {self.address} (no connection within "
                              f"{self.timeout:g}s)", reason="UNREACHABLE", method=method) from None

    async def _paged(self, method: str, call: Callable[..., Awaitable[Any]], request: Any, items: str, *,
                     limit: int | None, timeout: float | None) -> AsyncIterator[Any]:
        """Walk every page of a List* call (page_token in, next_page_token out), at most limit items."""
        loop = asyncio.get_running_loop()
        total = timeout if timeout is not None else self.timeout
        deadline = self._deadline(total)  # one deadline for every page
        count = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._out_of_time(method, deadline, total)
            response = await self._unary(method, call, request, timeout=remaining)
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
        """One unary call; ``timeout`` (default: self.timeout) is the overall
        deadline of every attempt together. Transient failures are retried when
        the call is safe to repeat. Everything else raises ClientError."""
        total = timeout if timeout is not None else self.timeout
        deadline = self._deadline(total)
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._out_of_time(method, deadline, total)
            try:
                metadata = [*(self.metadata or ()), *(extra_metadata or ())]
                return await call(request, timeout=remaining, metadata=metadata or None)
            except grpc.aio.AioRpcError as error:
                failures += 1
                if not (retryable and is_transient(error) and failures < self.retry.max_attempts):
                    raise ClientError.from_rpc_error(error, method=method) from error
                await self._sleep_before_retry(method, error, failures, deadline)
