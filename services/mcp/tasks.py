"""Durable MCP tasks (protocol 2025-11-25) kept in the mission ledger.

A task-augmented ``tools/call`` of vp_dispatch_mission dispatches the mission
and answers with a task whose id IS the mission id. ``tasks/get``,
``tasks/result``, ``tasks/list`` and ``tasks/cancel`` are GetMission,
WaitMission, ListMissions and CancelMission. vp-mcp holds no task state, so a
restart (or another replica) serves the same tasks.

SDK 2.3 carries the tasks types but not the feature (its 2025-11-25 method
tables leave tasks/* out, and it sieves every tools/call result down to a
CallToolResult), so this module plugs in through the SDK's public seams:
request handlers for the tasks/* methods, and a server middleware that answers
a task-augmented tools/call with a CreateTaskResult before the sieve.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from services.client import ClientError, is_terminal, mission_state_name
from services.common.contracts.vp.v1 import enums_pb2, mission_pb2
from services.mcp.convert import fell_back_to_caller, input_request, iso, mission_dict, mission_text, next_step
from services.mcp.errors import ToolFailure, from_client_error

if TYPE_CHECKING:
    from services.mcp.server import VpServer, VpToolbox

log = logging.getLogger("vp.mcp.tasks")

TASKS_VERSION = "2025-11-25"
#: Tools a client may call as a task.
TASK_TOOLS = frozenset({"vp_dispatch_mission"})
#: Missions created as tasks carry this label, so tasks/list lists them (and only them).
TASK_LABEL = "mcp.task"
POLL_INTERVAL_MS = 2000
RELATED_TASK = "io.modelcontextprotocol/related-task"
#: tasks/cancel waits this long for a running mission to stop before answering.
CANCEL_SETTLE_SECONDS = 10.0
LIST_LIMIT = 100
LIST_SCAN_LIMIT = 10_000

CAPABILITY = types.ServerTasksCapability(
    list=types.TasksListCapability(), cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call=types.TasksCallCapability())),
)


def served_at(protocol_version: str | None) -> bool:
    """Tasks exist in 2025-11-25 only (2026-07-28 moved them to an extension).
    None: the handshake-era initialization options, answered per negotiated version."""
    return protocol_version is None or protocol_version == TASKS_VERSION


def task_status(mission: mission_pb2.Mission) -> str:
    state = mission.state
    if state == enums_pb2.MISSION_STATE_COMPLETED:
        return "completed"
    if state == enums_pb2.MISSION_STATE_CANCELLED:
        return "cancelled"
    if state in (enums_pb2.MISSION_STATE_FAILED, enums_pb2.MISSION_STATE_TIMED_OUT):
        return "failed"
    if state == enums_pb2.MISSION_STATE_BLOCKED:
        return "input_required"
    return "working"


def task_of(mission: mission_pb2.Mission) -> dict[str, Any]:
    """The wire Task of a mission. A dict, not the model: ``ttl`` is required and null
    (the ledger keeps missions), and model dumps drop nulls."""
    question = input_request(mission)
    status = task_status(mission)
    if question:
        message = f"The VP asks: {question['question']} {next_step(mission)}"
    elif status == "working":
        # The tools' next_step suggests vp_wait_mission; a task's requestor polls tasks/get or calls tasks/result.
        message = f"Mission {mission_state_name(mission.state)}" + (", cancel requested" if mission.cancel_requested
                                                                     else "")
    else:
        message = next_step(mission)
    created = iso(mission.created_at) or iso(mission.updated_at)
    return {"taskId": mission.envelope.mission_id, "status": status, "statusMessage": message,
            "createdAt": created, "lastUpdatedAt": iso(mission.updated_at) or created, "ttl": None,
            "pollInterval": POLL_INTERVAL_MS}


def _require_tasks(ctx) -> None:
    if not served_at(ctx.protocol_version):
        raise MCPError(types.METHOD_NOT_FOUND, f"tasks are served on protocol {TASKS_VERSION} only", ctx.method)


def _protocol_error(error: ClientError, task_id: str) -> MCPError:
    failure = from_client_error(error)
    if error.reason == "MISSION_NOT_FOUND":
        return MCPError(types.INVALID_PARAMS, f"Task {task_id!r} not found")
    code = types.INVALID_PARAMS if error.code.name in ("INVALID_ARGUMENT", "NOT_FOUND") else types.INTERNAL_ERROR
    return MCPError(code, failure.text(), {"retryable": failure.retryable})


def _result_of(mission: mission_pb2.Mission) -> dict[str, Any]:
    """tasks/result payload: the CallToolResult vp_dispatch_mission gives, with the final mission."""
    data = mission_dict(mission)
    structured = {"mission": data, "deduplicated": False, "idempotency_key": mission.envelope.idempotency_key,
                  "idempotency_key_derived": mission.envelope.idempotency_key.startswith("mcp-")}
    failed = mission.state != enums_pb2.MISSION_STATE_COMPLETED or fell_back_to_caller(mission.route)
    result = types.CallToolResult(content=[types.TextContent(type="text", text=mission_text(data))],
                                  structured_content=structured, is_error=failed)
    wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    wire.pop("resultType", None)
    wire["_meta"] = {RELATED_TASK: {"taskId": mission.envelope.mission_id}}
    return wire


def _can_elicit(ctx) -> bool:
    return ctx.session.check_client_capability(types.ClientCapabilities(elicitation=types.ElicitationCapability()))


async def _elicit_answer(ctx, mission: mission_pb2.Mission, question: dict[str, Any]) -> str | None:
    """Ask the client (its user) the VP's question; the answer, or None if declined."""
    schema: dict[str, Any] = {"type": "object", "required": ["answer"],
                              "properties": {"answer": {"type": "string", "title": "Answer",
                                                        "description": "Your answer to the VP's question."}}}
    if question["choices"]:
        schema["properties"]["answer"]["enum"] = question["choices"]
    request = types.ElicitRequest(params=types.ElicitRequestFormParams(
        message=f"VP {mission.envelope.vp_id} asks (mission {mission.envelope.mission_id}): {question['question']}",
        requested_schema=schema, _meta={RELATED_TASK: {"taskId": mission.envelope.mission_id}}))
    try:
        result = await ctx.session.send_request(request, types.ElicitResult)
    except MCPError as error:
        log.info("task %s: elicitation failed: %s", mission.envelope.mission_id, error)
        return None
    answer = (result.content or {}).get("answer") if result.action == "accept" else None
    return str(answer) if answer not in (None, "") else None


async def _resume(mc, task_id: str, answer: str) -> None:
    try:
        await mc.resume(task_id, answer)
    except ClientError as error:
        if error.reason != "MISSION_NOT_BLOCKED":  # someone else answered first: fine
            raise
    log.info("task %s resumed with the client's answer", task_id)


async def _last_event_id(mc, mission_id: str) -> int:
    last = 0
    async for event in mc.events(mission_id=mission_id):
        last = event.event_id
    return last


async def _next_event(mc, mission_id: str, after: int) -> None:
    """Returns at the mission's first event after ``after`` (it resumed, ended, ...)."""
    stream = mc.events(after_event_id=after, mission_id=mission_id, follow=True)
    try:
        async for _event in stream:
            return
    finally:
        await stream.aclose()


def install(server: "VpServer", toolbox: "VpToolbox") -> None:
    mc = toolbox.backends.mission_control

    async def create_task(ctx, params: types.CallToolRequestParams) -> dict[str, Any]:
        if params.name not in TASK_TOOLS:
            raise MCPError(types.METHOD_NOT_FOUND, f"Tool {params.name!r} cannot run as a task; call it without "
                           "the task field")
        arguments = dict(params.arguments or {})
        labels = dict(arguments.get("labels") or {})
        labels[TASK_LABEL] = "true"
        arguments["labels"] = labels
        try:
            structured, _text = await toolbox.run(params.name, arguments)
        except ToolFailure as failure:
            raise MCPError(types.INVALID_PARAMS if not failure.retryable else types.INTERNAL_ERROR, failure.text(),
                           {"retryable": failure.retryable}) from None
        mission = await mc.get(structured["mission"]["mission_id"])
        log.info("task %s created (deduplicated=%s)", mission.envelope.mission_id, structured["deduplicated"])
        return {"task": task_of(mission)}

    async def middleware(ctx, call_next):
        # Before the SDK's tools/call sieve: a task-augmented call answers with a CreateTaskResult.
        if ctx.method == "tools/call" and ctx.protocol_version == TASKS_VERSION and isinstance(ctx.params, dict) \
                and ctx.params.get("task") is not None:
            params = types.CallToolRequestParams.model_validate(ctx.params, by_name=False)
            return await create_task(ctx, params)
        return await call_next(ctx)

    async def get_task(ctx, params: types.GetTaskRequestParams) -> dict[str, Any]:
        _require_tasks(ctx)
        try:
            return task_of(await mc.get(params.task_id))
        except ClientError as error:
            raise _protocol_error(error, params.task_id) from None

    async def task_result(ctx, params: types.GetTaskPayloadRequestParams) -> dict[str, Any]:
        """Blocks until the mission is terminal, as tasks/result must. A question on the
        way is put to the client as an elicitation when it can take one (the answer
        resumes the mission); otherwise the task stays input_required until someone
        answers with vp_resume_mission, or cancels it."""
        _require_tasks(ctx)
        asked: set[tuple[int, str]] = set()
        try:
            while True:
                cursor = await _last_event_id(mc, params.task_id)
                mission = await mc.get(params.task_id)
                if is_terminal(mission.state):
                    return _result_of(mission)
                if mission.state != enums_pb2.MISSION_STATE_BLOCKED:
                    await mc.wait(params.task_id, None)  # until terminal or BLOCKED
                    continue
                question = input_request(mission)
                if question is not None and (mission.attempt, question["question"]) not in asked \
                        and _can_elicit(ctx):
                    asked.add((mission.attempt, question["question"]))
                    answer = await _elicit_answer(ctx, mission, question)
                    if answer is not None:
                        await _resume(mc, params.task_id, answer)
                        continue
                await _next_event(mc, params.task_id, cursor)  # someone else answers, or cancels
        except ClientError as error:
            raise _protocol_error(error, params.task_id) from None

    async def list_tasks(ctx, params: types.PaginatedRequestParams) -> dict[str, Any]:
        _require_tasks(ctx)
        tasks: list[dict[str, Any]] = []
        try:
            async for mission in mc.list(page_size=500, limit=LIST_SCAN_LIMIT, newest_first=True):
                if mission.envelope.labels.get(TASK_LABEL) == "true":
                    tasks.append(task_of(mission))
                    if len(tasks) >= LIST_LIMIT:
                        break
        except ClientError as error:
            raise _protocol_error(error, "") from None
        return {"tasks": tasks}

    async def cancel_task(ctx, params: types.CancelTaskRequestParams) -> dict[str, Any]:
        _require_tasks(ctx)
        try:
            mission = await mc.get(params.task_id)
            if is_terminal(mission.state):
                raise MCPError(types.INVALID_PARAMS, f"Cannot cancel task {params.task_id!r}: already in terminal "
                               f"status {task_status(mission)!r}")
            await mc.cancel(params.task_id, "cancelled through MCP tasks/cancel")
            mission = await mc.wait(params.task_id, CANCEL_SETTLE_SECONDS, return_on_blocked=False)
        except ClientError as error:
            raise _protocol_error(error, params.task_id) from None
        return task_of(mission)

    server.middleware.append(middleware)
    server.add_request_handler("tasks/get", types.GetTaskRequestParams, get_task)
    server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, task_result)
    server.add_request_handler("tasks/list", types.PaginatedRequestParams, list_tasks)
    server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, cancel_task)
