"""Regenerate the Python stubs in services/common/contracts from protos/.

protoc writes absolute imports ("from vp.v1 import x_pb2") that only resolve
when the output folder is on sys.path; we rewrite them to the package path so
the stubs live inside the shared package like any other module.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "services" / "common" / "contracts"
PACKAGE = "services.common.contracts"


def main() -> int:
    generated = OUT / "vp"
    if generated.exists():
        shutil.rmtree(generated)
    protos = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={OUT}",
            f"--pyi_out={OUT}",
            f"--grpc_python_out={OUT}",
            *protos,
        ]
    )
    if rc != 0:
        return rc
    for folder in [generated, *[p for p in generated.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").write_text("")
    pattern = re.compile(r"^from vp\.v1 import", re.MULTILINE)
    for path in generated.rglob("*.py*"):
        text = path.read_text()
        path.write_text(pattern.sub(f"from {PACKAGE}.vp.v1 import", text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
