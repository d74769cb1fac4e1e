"""Generate the Python contracts (messages, gRPC stubs, typed stubs) from proto/.

`python scripts/gen_proto.py` writes libs/contracts/src/crm; `--check` regenerates into a
temporary directory and exits non-zero when the committed code differs (stale contracts).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
OUT_ROOT = ROOT / "libs" / "contracts" / "src"
PACKAGE = "crm"


def generate(out: Path) -> None:
    # protoc finds the mypy plugins on PATH: use the ones installed next to this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    files = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Regular packages (not namespace packages) so mypy and hatch see every module.
    for directory in [out / PACKAGE, *(p for p in (out / PACKAGE).rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (out / PACKAGE / "py.typed").touch()


def tree_differs(a: Path, b: Path) -> list[str]:
    diffs: list[str] = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    diffs += [f"only in generated: {n}" for n in cmp.left_only]
    diffs += [f"only in committed: {n}" for n in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    diffs += [f"differs: {n}" for n in mismatch + errors]
    for sub in cmp.common_dirs:
        diffs += [f"{sub}/{d}" for d in tree_differs(a / sub, b / sub)]
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    options = parser.parse_args()
    if options.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            diffs = tree_differs(Path(tmp) / PACKAGE, OUT_ROOT / PACKAGE)
        if diffs:
            print("generated contracts are stale; run `make proto`:\n  " + "\n  ".join(diffs))
            return 1
        print("generated contracts are fresh")
        return 0
    shutil.rmtree(OUT_ROOT / PACKAGE, ignore_errors=True)
    OUT_ROOT.mkdir(parents=True, exist_ok=True)
    generate(OUT_ROOT)
    print(f"generated {OUT_ROOT / PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
