"""The MCP server: the vp_* tools (tools.py) on the SDK's low-level Server,
with argument validation, structured results and actionable tool errors; the
durable tasks of tasks.py plugged in for 2025-11-25 clients."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator
from mcp.server import Server
from mcp.shared.exceptions import MCPError

from services.client import ClientError, MissionControlClient, RetryPolicy, SessionsClient
from services.mcp import tasks
from services.mcp.errors import ToolFailure, from_client_error, invalid_arguments
from services.mcp.tools import TOOLS, ToolContext, ToolSpec

log = logging.getLogger("vp.mcp")

SERVER_NAME = "vp-mission-control"
INSTRUCTIONS = (
    "VP Mission Control runs long missions on persistent VP worker agents (vp.coder.primary for code, "
    "vp.general.primary for everything else). Dispatch with vp_dispatch_mission (with an idempotency_key and a "
    "source), wait with vp_wait_mission, read results with vp_read_result_artifacts. If a result says "
    "handle_it_yourself, do the work yourself. Answer a blocked mission's question with vp_resume_mission. Use "
    "only these tools to reach the system."
)

#: Tool calls answer within seconds even when the dispatcher is down: a few quick retries, then a tool error.
TOOL_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.2, max_backoff=1.0)


@dataclass
class Backends:
    """The project clients vp-mcp talks through (never the store)."""

    mission_control: MissionControlClient
    sessions: SessionsClient

    @classmethod
    def connect(cls, dispatcher: str, registry: str, *, timeout: float = 10.0, **client_kwargs: Any) -> "Backends":
        return cls(MissionControlClient(dispatcher, timeout=timeout, retry=TOOL_RETRY, **client_kwargs),
                   SessionsClient(registry, timeout=timeout, retry=TOOL_RETRY, **client_kwargs))

    async def close(self) -> None:
        await self.mission_control.close()
        await self.sessions.close()


def tool_definition(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name, title=spec.title, description=spec.description, input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        annotations=types.ToolAnnotations(title=spec.title, read_only_hint=spec.read_only,
                                          destructive_hint=spec.destructive, idempotent_hint=spec.idempotent,
                                          open_world_hint=False),
        execution=types.ToolExecution(task_support="optional" if spec.name in tasks.TASK_TOOLS else "forbidden"),
    )


def error_result(failure: ToolFailure) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=failure.text())], is_error=True)


class VpToolbox:
    """Validates, runs and shapes the result of one tool call."""

    def __init__(self, backends: Backends, tools: tuple[ToolSpec, ...] = TOOLS) -> None:
        self.backends = backends
        self.tools = {tool.name: tool for tool in tools}
        self._validators = {tool.name: Draft202012Validator(tool.input_schema) for tool in tools}

    def validate(self, name: str, arguments: dict[str, Any]) -> ToolSpec:
        spec = self.tools.get(name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name!r}. Available: {', '.join(self.tools)}")
        problems = []
        for error in sorted(self._validators[name].iter_errors(arguments), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in error.path) or "arguments"
            problems.append(f"{where}: {error.message}")
        if problems:
            raise invalid_arguments(problems)
        return spec

    def where(self, spec: ToolSpec) -> str:
        if spec.name == "vp_list_sessions":
            return f"registry at {self.backends.sessions.address}"
        return f"dispatcher at {self.backends.mission_control.address}"

    async def run(self, name: str, arguments: dict[str, Any], progress=None) -> tuple[dict[str, Any], str]:
        """(structured, text) or ToolFailure; never anything else."""
        spec = self.validate(name, arguments)
        context = ToolContext(self.backends.mission_control, self.backends.sessions)
        if progress is not None:
            context.progress = progress
        try:
            return await spec.run(context, arguments)
        except ToolFailure:
            raise
        except ClientError as error:
            raise from_client_error(error, target=self.where(spec)) from None
        except Exception as error:  # noqa: BLE001 - a model gets one line, the log gets the traceback
            log.exception("tool %s failed unexpectedly", name)
            raise ToolFailure(f"vp-mcp could not complete {name} ({type(error).__name__})", code="INTERNAL",
                              retryable=True, hint="Retry once; if it fails again, tell the user and handle the "
                              "work yourself.") from None

    async def call(self, ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        try:
            structured, text = await self.run(params.name, arguments, progress=ctx.session.report_progress)
        except ToolFailure as failure:
            log.info("tool %s: %s", params.name, failure.text().splitlines()[0])
            return error_result(failure)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured)


class VpServer(Server):
    """Advertises the tasks capability on 2025-11-25 handshakes (the SDK ships the
    types but leaves the capability and methods to the server)."""

    def get_capabilities(self, *args: Any, protocol_version: str | None = None, **kwargs: Any
                         ) -> types.ServerCapabilities:
        capabilities = super().get_capabilities(*args, protocol_version=protocol_version, **kwargs)
        if tasks.served_at(protocol_version):
            capabilities.tasks = tasks.CAPABILITY
        return capabilities


def build_server(backends: Backends) -> VpServer:
    toolbox = VpToolbox(backends)

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool_definition(spec) for spec in toolbox.tools.values()])

    server = VpServer(SERVER_NAME, version="1", title="VP Mission Control", instructions=INSTRUCTIONS,
                      on_list_tools=list_tools, on_call_tool=toolbox.call,
                      get_tool_input_schema=lambda name: (toolbox.tools[name].input_schema
                                                          if name in toolbox.tools else None))
    tasks.install(server, toolbox)
    return server
