"""Every RPC the services expose, read from the contract, so tests that must
cover "every method" notice a method the day it is added."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import message_factory

from services.common.contracts.vp.v1 import (
    mission_control_service_pb2,
    session_registry_service_pb2,
    worker_channel_service_pb2,
)

SERVICE_FILES = (mission_control_service_pb2, session_registry_service_pb2, worker_channel_service_pb2)
REGISTRY_SERVICES = {"vp.v1.SessionRegistry"}


@dataclass(frozen=True)
class Rpc:
    service: str
    name: str
    request_type: type
    response_type: type
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def on_registry(self) -> bool:
        return self.service in REGISTRY_SERVICES


def all_rpcs() -> list[Rpc]:
    found = []
    for module in SERVICE_FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(Rpc(service.full_name, method.name,
                                 message_factory.GetMessageClass(method.input_type),
                                 message_factory.GetMessageClass(method.output_type),
                                 method.client_streaming, method.server_streaming))
    return found
