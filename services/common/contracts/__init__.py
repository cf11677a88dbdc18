"""Generated protobuf and gRPC stubs for package vp.v1 (see scripts/gen_protos.py).

Import messages from here rather than from the generated modules, so callers do
not depend on which .proto file a message lives in.
"""
