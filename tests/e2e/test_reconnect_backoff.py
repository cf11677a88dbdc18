"""The reconnect backoff of every channel (the registry's above all) is bounded
to about a second. grpc's default grows 1 s, 1.6 s, 2.6 s, 4.1 s ... up to two
minutes, so after a 3 s registry outage routing resumed 4.7 s later, after 10 s
only 8 s later. Here a listener that drops every connection stands in for a
registry that is down: the channel's connection attempts keep coming about once
a second instead of spreading out."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import grpc

from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.common.grpc_options import CHANNEL_OPTIONS, MAX_RECONNECT_BACKOFF_MS

ATTEMPTS = 8


class DroppingListener(threading.Thread):
    """Accepts and closes at once; records when each connection attempt came."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[float] = []

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            conn.close()


async def test_connection_attempts_to_a_down_peer_stay_about_a_second_apart():
    listener = DroppingListener()
    listener.start()
    channel = grpc.aio.insecure_channel(listener.address, options=CHANNEL_OPTIONS)
    stub = reg_grpc.SessionRegistryStub(channel)
    try:
        # Keep a call pending (wait_for_ready) so the channel keeps trying.
        pending = asyncio.ensure_future(stub.ListSessions(reg_pb.ListSessionsRequest(), timeout=120,
                                                          wait_for_ready=True))
        while len(listener.accepted) < ATTEMPTS and not pending.done():
            await asyncio.sleep(0.05)
        pending.cancel()
    finally:
        await channel.close()
        listener.sock.close()
    gaps = [b - a for a, b in zip(listener.accepted, listener.accepted[1:])]
    # With the bound every gap is at most ~1 s (+20 % jitter); unbounded, the
    # 6th and 7th gaps are 6.7 s and 10.7 s. The margin is for a loaded machine.
    bound = MAX_RECONNECT_BACKOFF_MS / 1000 * 1.2
    assert max(gaps[3:]) < bound * 2.5, gaps
