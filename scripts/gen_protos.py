"""Regenerate the Python stubs in services/common/contracts from protos/.

protoc writes absolute imports ("from vp.v1 import x_pb2") that only resolve
when the output folder is on sys.path; we rewrite them to the package path so
the stubs live inside the shared package like any other module.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "services" / "common" / "contracts"
PACKAGE = "services.common.contracts"


def generate(out: Path) -> int:
    generated = out / "vp"
    if generated.exists():
        shutil.rmtree(generated)
    protos = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
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


def stale_files(fresh: Path, committed: Path) -> list[str]:
    names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    names |= {p.relative_to(committed) for p in committed.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return sorted(
        str(name) for name in names
        if not (fresh / name).exists() or not (committed / name).exists()
        or not filecmp.cmp(fresh / name, committed / name, shallow=False)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ from a fresh run")
    args = parser.parse_args()
    if not args.check:
        return generate(OUT)
    with tempfile.TemporaryDirectory() as tmp:
        rc = generate(Path(tmp))
        if rc != 0:
            return rc
        stale = stale_files(Path(tmp) / "vp", OUT / "vp")
    if stale:
        print("generated stubs are stale; run `make protos` and commit:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    print("generated stubs are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
