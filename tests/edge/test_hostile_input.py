"""Whatever a client sends, the answer is a documented status with ErrorInfo:
never UNKNOWN, never INTERNAL, never a Python class name."""

from __future__ import annotations

import os
from collections import Counter

import grpc
import pytest
from hypothesis import HealthCheck, given, settings

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.auth.policy import MATRIX
from services.common.auth.principals import Role
from tests.support.hostile import acceptable, call
from tests.support.proto_strategies import messages
from tests.support.rpc_catalog import all_rpcs

RAW_PAYLOADS = {
    "garbage": b"\xff\xff\xff\xff",
    "truncated": b"\x0a\x05ab",
    "invalid_utf8": b"",  # built per method: a string field holding bytes that are not UTF-8
    "struct_nesting_200": b"",  # built below
}
FUZZ_EXAMPLES = int(os.environ.get("VP_FUZZ_EXAMPLES", "40"))


def _deep_struct_envelope(depth: int) -> bytes:
    """DispatchMissionRequest whose envelope.constraints nests depth Structs: raw bytes,
    since the Python library refuses to build it."""
    # Struct{fields{key:"k" value:Value{struct_value: <inner>}}}, innermost empty.
    inner = b""
    for _ in range(depth):
        value = _field(5, inner)          # Value.struct_value = 5
        entry = _field(1, b"k") + _field(2, value)
        inner = _field(1, entry)          # Struct.fields = 1 (map entry)
    envelope = _field(5, b"x") + _field(6, inner)  # objective, constraints
    return _field(1, envelope)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


RAW_PAYLOADS["struct_nesting_200"] = _deep_struct_envelope(200)


def _invalid_utf8_for(descriptor, depth: int = 3) -> bytes | None:
    """The request with its first reachable string field set to invalid UTF-8."""
    for field in descriptor.fields:
        if field.type == field.TYPE_STRING:
            return _field(field.number, b"\xc3\x28")
    for field in descriptor.fields:
        if field.message_type is not None and depth > 0 and not field.message_type.GetOptions().map_entry:
            inner = _invalid_utf8_for(field.message_type, depth - 1)
            if inner is not None:
                return _field(field.number, inner)
    return None


def _payload(name: str, rpc) -> bytes:
    if name == "invalid_utf8":
        payload = _invalid_utf8_for(rpc.request_type.DESCRIPTOR)
        assert payload is not None, f"{rpc.path}: no string field to corrupt"
        return payload
    return RAW_PAYLOADS[name]


def _channel(processes, rpc, identity: str = "operator") -> grpc.Channel:
    address = processes.registry_address if rpc.on_registry else processes.dispatcher_address
    return processes.channel_security(identity).channel(address)


@pytest.mark.parametrize("payload", sorted(RAW_PAYLOADS))
def test_raw_undecodable_bytes_to_every_method_are_invalid_argument(processes, payload):
    problems = []
    for rpc in all_rpcs():
        with _channel(processes, rpc, _allowed_identity(rpc)) as channel:
            outcome = call(channel, rpc, _payload(payload, rpc))
        if payload == "struct_nesting_200" and rpc.name != "DispatchMission":
            continue  # the bytes only mean "too deep" to DispatchMission
        if outcome.code != grpc.StatusCode.INVALID_ARGUMENT or outcome.error_info is None:
            problems.append(f"{rpc.path}: {outcome.code.name} {outcome.details!r} info={outcome.error_info}")
        elif "class" in outcome.details:
            problems.append(f"{rpc.path}: message names a Python class: {outcome.details!r}")
    assert not problems, "\n".join(problems)


def _allowed_identity(rpc) -> str:
    """A caller the matrix lets call rpc, so the bytes are what gets judged."""
    roles = MATRIX[rpc.path].roles
    return "operator" if Role.OPERATOR in roles else "worker-vp.coder.primary"


def _tame(rpc, request):
    """Keep one example from blocking the run: no followed streams, short waits."""
    if isinstance(request, mc_pb.StreamMissionEventsRequest):
        request.follow = False
    if isinstance(request, mc_pb.WaitMissionRequest) and request.timeout.seconds > 1:
        request.timeout.seconds = 1
    return request


def test_fuzz_every_request_message_gets_only_documented_codes(insecure_processes):
    processes = insecure_processes
    counts: Counter[str] = Counter()
    problems: list[str] = []
    for rpc in all_rpcs():
        channel = _channel(processes, rpc)

        @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(messages(rpc.request_type.DESCRIPTOR))
        def one(request):
            payload = _tame(rpc, request).SerializeToString()
            outcome = call(channel, rpc, payload)
            counts[outcome.code.name] += 1
            why = acceptable(outcome)
            if why:
                problems.append(f"{rpc.path}: {why} <- {request!r:.300}")

        try:
            one()
        finally:
            channel.close()
    print(f"\nfuzz status counts ({FUZZ_EXAMPLES} examples per method): {dict(sorted(counts.items()))}")
    assert not problems, f"{len(problems)} bad outcomes:\n" + "\n".join(problems[:30])
