"""A real stack for the vp-mcp tests, and vp-mcp itself as stdio or HTTP."""

from __future__ import annotations

import os
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp import Client, StdioServerParameters

from tests.support.e2e import E2EStack
from tests.support.processes import ServiceProcess, console_script

HTTP_LINE = r"listening on (\S+:\d+) \(streamable HTTP"


@dataclass
class McpStack:
    e2e: E2EStack
    pythonpath: str

    @classmethod
    def start(cls, root: Path, *, pythonpath: str) -> "McpStack":
        (root / "handoff").mkdir(exist_ok=True)
        e2e = E2EStack(f"sqlite:///{root / 'store.db'}", root)
        try:
            e2e.start_registry()
            e2e.start_dispatcher()
            e2e.start_worker("vp.general.primary")
            stack = cls(e2e, pythonpath)
            stack.start_worker("vp.coder.primary", "--executor", "python", "--entry-point",
                               "tests.mcp.agent:run")
        except BaseException:
            e2e.stop()
            raise
        return stack

    def start_worker(self, vp_id: str, *extra: str) -> ServiceProcess:
        e2e = self.e2e
        worker = ServiceProcess([
            console_script("vp-worker"), "--dispatcher", e2e.dispatcher_address, "--registry", e2e.registry_address,
            "--vp-id", vp_id, "--workspace-root", str(e2e.root / "workspaces"), "--lease-ttl", str(e2e.lease_ttl),
            "--allowed-root", str(e2e.root / "handoff"), *e2e.worker_args(vp_id), *extra],
            env={"PYTHONPATH": self.pythonpath})
        e2e.workers[vp_id] = worker
        worker.wait_for_line(r"connected to", timeout=30)
        return worker

    @property
    def dispatcher(self) -> str:
        return self.e2e.dispatcher_address

    @property
    def registry(self) -> str:
        return self.e2e.registry_address

    def stop(self) -> None:
        self.e2e.stop()

    def stdio_params(self, dispatcher: str | None = None) -> StdioServerParameters:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VP_")} | self.e2e.client_env()
        return StdioServerParameters(command=console_script("vp-mcp"),
                                     args=["--dispatcher", dispatcher or self.dispatcher, "--registry", self.registry],
                                     env=env)

    def start_http(self, dispatcher: str | None = None) -> tuple[ServiceProcess, str]:
        process = ServiceProcess([console_script("vp-mcp"), "--transport", "http", "--listen", "127.0.0.1:0",
                                  "--dispatcher", dispatcher or self.dispatcher, "--registry", self.registry],
                                 env=self.e2e.client_env())
        address = process.wait_for_line(HTTP_LINE, timeout=30).group(1)
        return process, f"http://{address}/mcp"


@asynccontextmanager
async def stdio_client(stack: McpStack, *, dispatcher: str | None = None, mode: str = "auto"):
    async with Client(stack.stdio_params(dispatcher), mode=mode) as client:
        yield client


@asynccontextmanager
async def legacy_session(params: StdioServerParameters, *, elicitation_callback=None):
    """A 2025-11-25 (initialize handshake) session over stdio, plus its raw JSON-RPC
    dispatcher: the SDK client has no task-augmented tools/call (it expects a
    CallToolResult), so that one request goes out raw."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import stdio_client as stdio_transport
    from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

    async with stdio_transport(params) as (read_stream, write_stream):
        dispatcher = JSONRPCDispatcher(read_stream, write_stream)
        async with ClientSession(dispatcher=dispatcher, elicitation_callback=elicitation_callback) as session:
            await session.initialize()
            yield session, dispatcher


def free_address() -> str:
    from tests.support.e2e import free_port

    return f"127.0.0.1:{free_port()}"
