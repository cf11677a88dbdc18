"""A separate process that acquires a lease and heartbeats it until killed.
Used by the fault tests to play a worker that dies with SIGKILL."""

from __future__ import annotations

import sys
import time

import grpc
from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import session_registry_service_pb2 as pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as pb_grpc

# The registry under test is started with this --workspace-root. The registry only
# records the path (workers create workspaces), so it needs no directory here.
WORKSPACE_ROOT = "/ws"


def main() -> None:
    address, vp_id, owner, ttl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    stub = pb_grpc.SessionRegistryStub(grpc.insecure_channel(address))
    reply = stub.AcquireLease(pb.AcquireLeaseRequest(vp_id=vp_id, owner=owner, workspace_dir=f"{WORKSPACE_ROOT}/{vp_id}",
                                                     ttl=Duration(seconds=ttl)), timeout=10)
    print(f"acquired epoch={reply.session.lease_epoch} session={reply.session.session_id}", flush=True)
    while True:
        time.sleep(ttl / 3)
        stub.RenewLease(pb.RenewLeaseRequest(vp_id=vp_id, owner=owner, lease_epoch=reply.session.lease_epoch,
                                             ttl=Duration(seconds=ttl)), timeout=10)


if __name__ == "__main__":
    main()
