"""Send one request (a message or raw bytes) to any RPC and report the status,
for the fuzz and raw-bytes tests: which codes may come back, and that every
failure carries ErrorInfo."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.support.rpc_catalog import Rpc

# What the contract documents for a bad or unlucky request. DEADLINE_EXCEEDED is
# the client's own deadline (a long wait), never a server answer; UNIMPLEMENTED a
# method in the contract that this build does not serve yet.
DOCUMENTED = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
}
STREAM_READ_LIMIT = 3


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    error_info: error_details_pb2.ErrorInfo | None


def _identity(value: bytes) -> bytes:
    return value


def call(channel: grpc.Channel, rpc: Rpc, payload: bytes, *, timeout: float = 5.0,
         metadata: tuple[tuple[str, str], ...] = ()) -> Outcome:
    """payload is already serialized (a message's bytes or garbage)."""
    kwargs = dict(request_serializer=_identity, response_deserializer=_identity)
    try:
        if rpc.client_streaming:
            factory = channel.stream_stream if rpc.server_streaming else channel.stream_unary
            responses = factory(rpc.path, **kwargs)(iter([payload]), timeout=timeout, metadata=metadata)
        elif rpc.server_streaming:
            responses = channel.unary_stream(rpc.path, **kwargs)(payload, timeout=timeout, metadata=metadata)
        else:
            channel.unary_unary(rpc.path, **kwargs)(payload, timeout=timeout, metadata=metadata)
            return Outcome(grpc.StatusCode.OK, "", None)
        for count, _ in enumerate(responses, start=1):
            if count >= STREAM_READ_LIMIT:
                responses.cancel()
                return Outcome(grpc.StatusCode.OK, "", None)
        return Outcome(grpc.StatusCode.OK, "", None)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.CANCELLED:
            return Outcome(grpc.StatusCode.OK, "", None)
        return Outcome(error.code(), error.details() or "", _error_info(error))


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def acceptable(outcome: Outcome) -> str | None:
    """Why the outcome breaks the contract, or None."""
    if outcome.code not in DOCUMENTED:
        return f"undocumented code {outcome.code.name}: {outcome.details}"
    if outcome.code not in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED) and outcome.error_info is None:
        return f"{outcome.code.name} without ErrorInfo: {outcome.details}"
    return None
