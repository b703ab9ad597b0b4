"""The bad-input corpus (tests/corpus/*.yaml) against the real stage scripts, the Python scorer and
the Node client: every case is one `error: ...` line with exit code 2 and nothing written, or the
accepted result docs/errors.md documents. Shared scorer cases must get the same verdict from both
clients (and, when accepted, the same scores).

Fast by construction: stage scripts and the Python scorer run in this process (as tests/test_cli.py
does); the cases on built artifacts share the one in-process build of tests/conftest.py (``staged``:
every stage script run once, without DVC); only the Node client runs as a process.
"""

from __future__ import annotations

import csv
import json
import os
import runpy
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from onnxship.serve import cli
from tests.conftest import REPO
from tests.corpus_cases import STAGES, load_cases, make_input, make_paths, write_stage_inputs
from tests.corpus_cases import edit_files as edit
from tests.test_node_client import node_client

CASES = load_cases()
UMASK = 0o022  # the modes below are checked under this umask


def cases(*targets: str) -> list:
    return [pytest.param(case, id=case["id"]) for case in CASES if case["target"] in targets]


def skip_if_root(case: dict) -> None:
    if case.get("skip_as_root") and os.geteuid() == 0:
        pytest.skip(f"runs as root: {case['skip_as_root']}")


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def check_error(case: dict, code: int, stderr: str, who: str) -> None:
    """Exit code 2 and one `error:` line (the last) holding every key word of the case."""
    assert "Traceback" not in stderr and "    at " not in stderr, f"{who}:\n{stderr}"
    assert code == 2, f"{who}: exit {code}, expected 2\n{stderr}"
    lines = stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error")] == lines[-1:], f"{who}:\n{stderr}"
    assert lines[-1].startswith("error: "), f"{who}:\n{stderr}"
    missing = [w for w in case["expect"]["error"] if w.lower() not in lines[-1].lower()]
    assert not missing, f"{who}: {missing} not in:\n{lines[-1]}"


def dotted(obj, key: str):
    for part in key.split("."):
        obj = obj[part]
    return obj


def check_accepted_files(case: dict, root: Path) -> None:
    expect = case["expect"]
    for path, mode in (expect.get("modes") or {}).items():
        assert oct((root / path).stat().st_mode & 0o777) == oct(int(mode, 8)), path
    for check in expect.get("json", []):
        assert dotted(json.loads((root / check["path"]).read_text()), check["key"]) == check["equals"], check


# --- stage scripts ---------------------------------------------------------------------------------


def run_stage(stage: str, root: Path, monkeypatch, capsys) -> tuple[int, str]:
    """scripts/<stage>.py as `python scripts/<stage>.py` runs it, in this process."""
    monkeypatch.chdir(root)
    capsys.readouterr()
    with umask(UMASK), pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "scripts" / f"{stage}.py"), run_name="__main__")
    return exit_info.value.code or 0, capsys.readouterr().err


def check_stage(case: dict, root: Path, monkeypatch, capsys) -> None:
    before = snapshot(root)
    code, stderr = run_stage(case["target"], root, monkeypatch, capsys)
    expect = case["expect"]
    if expect["exit"] == 2:
        check_error(case, code, stderr, case["target"])
        assert snapshot(root) == before, "an error must leave every file as it was"
    else:
        assert "Traceback" not in stderr and code == expect["exit"], stderr
        check_accepted_files(case, root)


@pytest.mark.parametrize("case", cases("train"))
def test_train_case(case, tmp_path, monkeypatch, capsys):
    from tests.corpus_cases import BASE_PARAMS

    skip_if_root(case)
    write_stage_inputs(case, tmp_path, BASE_PARAMS)
    check_stage(case, tmp_path, monkeypatch, capsys)


@pytest.fixture(scope="module")
def built_stage(staged, tmp_path_factory) -> Path:
    """The built project's params.yaml and artifacts, copied once (cases copy this copy)."""
    root = tmp_path_factory.mktemp("corpus_built")
    shutil.copytree(staged.root / "artifacts", root / "artifacts")
    shutil.copy2(staged.root / "params.yaml", root / "params.yaml")
    return root


@pytest.mark.parametrize("case", cases(*STAGES[1:]))
def test_artifact_stage_case(case, built_stage, tmp_path, monkeypatch, capsys):
    skip_if_root(case)
    shutil.copytree(built_stage / "artifacts", tmp_path / "artifacts")
    write_stage_inputs(case, tmp_path, (built_stage / "params.yaml").read_text())
    check_stage(case, tmp_path, monkeypatch, capsys)


# --- the scorers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_once(staged, tmp_path_factory) -> Path:
    """The served artifacts, copied once; cases that edit them take their own copy."""
    return Path(shutil.copytree(staged.served, tmp_path_factory.mktemp("corpus_served") / "artifacts"))


def scorer_setup(case: dict, served_once: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(artifacts, input, output) of a scorer case, in ``tmp_path``."""
    artifacts = served_once
    if case.get("artifacts_files"):
        artifacts = Path(shutil.copytree(served_once, tmp_path / "artifacts"))
        edit(artifacts, case["artifacts_files"])
    source = make_input(case.get("input", {}), served_once / "test.csv", tmp_path)
    make_paths(case, tmp_path)
    output = source if case.get("output") == "@input" else tmp_path / case.get("output", "out.jsonl")
    return artifacts, source, output


def case_args(case: dict, folder: Path) -> list[str]:
    """The case's extra arguments, ``{tmp}`` standing for its folder."""
    return [str(a).replace("{tmp}", str(folder)) for a in case.get("args", [])]


def python_run(case: dict, artifacts: Path, source: Path, output: Path, capsys) -> tuple[int, str]:
    command = case.get("command", "score")
    argv = [command, "--artifacts", str(artifacts)]
    if command in ("score", "overhead"):
        argv += ["--input", str(source)]
    if command == "score":
        argv += ["--output", str(output)]
    if command == "overhead":
        argv += ["--repetitions", "5", "--warmup", "1"]
    capsys.readouterr()
    with umask(UMASK):
        try:
            code = cli.main([*argv, *case_args(case, source.parent)])
        except SystemExit as exit_info:  # argparse
            code = exit_info.code
    return code, capsys.readouterr().err


def node_run(case: dict, artifacts: Path, source: Path, output: Path) -> tuple[int, str]:
    argv = ["--artifacts", str(artifacts), "--input", str(source), "--output", str(output)]
    with umask(UMASK):
        result = subprocess.run(
            ["node", str(node_client() / "score.mjs"), *argv, *case_args(case, source.parent)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return result.returncode, result.stderr


def scores(output: Path) -> list[dict]:
    if output.suffix == ".csv":
        with open(output, newline="") as handle:
            rows = list(csv.DictReader(handle))
        convert = {"row": int, "probability": float, "decision": lambda v: v == "1"}
        return [{k: convert.get(k, str)(v) for k, v in r.items()} for r in rows]
    return [json.loads(line) for line in output.read_text().splitlines()]


def run_client(who: str, case: dict, paths: tuple[Path, Path, Path], tmp_path: Path, capsys):
    """Run one client on the case and check its verdict; the scores if accepted."""
    artifacts, source, output = paths
    before = snapshot(tmp_path)
    if who == "python":
        code, stderr = python_run(case, artifacts, source, output, capsys)
    else:
        code, stderr = node_run(case, artifacts, source, output)
    if case["expect"]["exit"] == 2:
        check_error(case, code, stderr, who)
        assert snapshot(tmp_path) == before, f"{who}: an error must write nothing"
        return None
    assert code == 0 and "Traceback" not in stderr, f"{who}: exit {code}\n{stderr}"
    check_accepted_files(case, tmp_path)
    if case.get("command", "score") != "score":
        return None
    result = scores(output)
    expect = case["expect"]
    assert len(result) == expect["rows"], who
    if "fields" in expect:  # --id-column / --keep: the copied fields, in order, as text
        assert [list(r) for r in result] == [expect["fields"]] * len(result), who
    for key, row in (("first", 0), ("second", 1)):
        for name, text in (expect.get(key) or {}).items():
            assert result[row][name] == text, f"{who}: row {row + 1} {name}"
    output.unlink()
    return result


@pytest.mark.parametrize("case", cases("scorers", "python", "node"))
def test_scorer_case(case, served_once, tmp_path, capsys):
    skip_if_root(case)
    paths = scorer_setup(case, served_once, tmp_path)
    clients = ["python", "node"] if case["target"] == "scorers" else [case["target"]]
    results = {who: run_client(who, case, paths, tmp_path, capsys) for who in clients}
    if len(results) == 2 and results["python"] is not None:
        python, node = results["python"], results["node"]
        assert [r["row"] for r in python] == [r["row"] for r in node]
        assert [r["decision"] for r in python] == [r["decision"] for r in node]
        # Everything but the probability (compared below, to 1e-6) is the same: copied fields too.
        assert [{k: v for k, v in r.items() if k != "probability"} for r in python] == [
            {k: v for k, v in r.items() if k != "probability"} for r in node
        ]
        for p, n in zip(python, node, strict=True):
            assert abs(p["probability"] - n["probability"]) <= 1e-6


@pytest.fixture(scope="module")
def served_once_v1(staged_v1, tmp_path_factory) -> Path:
    """The contract v1 export of the same model (tests/conftest.py ``staged_v1``), copied once."""
    return Path(shutil.copytree(staged_v1, tmp_path_factory.mktemp("corpus_served_v1") / "artifacts"))


@pytest.mark.parametrize("case", cases("scorers", "python"))
def test_scorer_case_on_a_contract_v1_export(case, served_once_v1, tmp_path, capsys):
    """v1 artifacts stay readable: the Python scorer gives every case the verdict, message and scores
    it gives on the v2 export (the served artifacts above)."""
    skip_if_root(case)
    run_client("python", case, scorer_setup(case, served_once_v1, tmp_path), tmp_path, capsys)


# --- the catalogue ---------------------------------------------------------------------------------


def test_every_case_is_in_the_error_catalogue():
    from tools.errors_catalogue import render

    assert (REPO / "docs" / "errors.md").read_text() == render(CASES), (
        "docs/errors.md is out of date: run python -m tools.errors_catalogue"
    )


def test_the_corpus_covers_every_target_and_enough_cases():
    targets = {case["target"] for case in CASES}
    assert targets == {*STAGES, "scorers", "python", "node"}
    assert len(CASES) >= 60
