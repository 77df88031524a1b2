"""Generate the Python stubs of protos/ into the SDK, or check that they have not drifted.

    python tools/protos.py generate   # rewrite sdk/mailwright/<area>/v1/*_pb2*.py(i)
    python tools/protos.py check      # exit 1 when the committed stubs differ

Messages get `_pb2.py` with typed `.pyi` (mypy-protobuf), services `_pb2_grpc.py` with
typed `.pyi`. Generated code is never edited by hand.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
SDK = ROOT / "sdk"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
INIT_DOC = '"""Generated from protos/{path}; do not edit (run `make protos`)."""\n'


def _plugin(name: str) -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    executable = scripts / name
    if not executable.exists():
        raise SystemExit(f"{name} not found in {scripts}; run `make install`")
    return f"--plugin={name}={executable}"


def _proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Generate every stub under `out`; return the files written, relative to `out`."""
    files = _proto_files()
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        _plugin("protoc-gen-mypy"),
        _plugin("protoc-gen-mypy_grpc"),
        f"--python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out=quiet:{out}",
        *[str(path.relative_to(PROTOS)) for path in files],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    # grpc stubs are only useful for files that declare a service.
    for relative in list(written):
        if relative.name.endswith(("_pb2_grpc.py", "_pb2_grpc.pyi")):
            proto = PROTOS / str(relative).replace("_pb2_grpc.pyi", ".proto").replace(
                "_pb2_grpc.py", ".proto"
            )
            if not re.search(r"^service\s", proto.read_text(), re.MULTILINE):
                (out / relative).unlink()
                written.remove(relative)
    for package in sorted({relative.parent for relative in written}):
        for level in range(len(package.parts)):
            directory = Path(*package.parts[: level + 1])
            if directory == Path("mailwright"):
                continue
            init = out / directory / "__init__.py"
            if not init.exists():
                init.write_text(INIT_DOC.format(path=directory))
                written.append(directory / "__init__.py")
    return sorted(written)


def _committed() -> set[Path]:
    found: set[Path] = set()
    for area in (SDK / "mailwright").iterdir():
        v1 = area / "v1"
        if area.is_dir() and v1.is_dir():
            for path in v1.iterdir():
                if path.name.endswith(GENERATED_SUFFIXES):
                    found.add(path.relative_to(SDK))
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in {"generate", "check"}:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        written = generate(out)
        stubs = {path for path in written if path.name.endswith(GENERATED_SUFFIXES)}
        if argv[0] == "generate":
            for stale in _committed() - stubs:
                (SDK / stale).unlink()
            for relative in written:
                target = SDK / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if relative.name == "__init__.py" and target.exists():
                    continue
                shutil.copyfile(out / relative, target)
            print(f"generated {len(stubs)} files from {len(_proto_files())} protos")
            return 0
        drift = sorted(
            str(path)
            for path in stubs | _committed()
            if not (SDK / path).exists()
            or not (out / path).exists()
            or not filecmp.cmp(out / path, SDK / path, shallow=False)
        )
        if drift:
            print("generated stubs differ from protos/ (run `make protos`):", file=sys.stderr)
            for path in drift:
                print(f"  sdk/{path}", file=sys.stderr)
            return 1
        print(f"stubs match protos/ ({len(stubs)} files)")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
