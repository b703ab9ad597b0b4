"""Differential fuzzing of the two scoring clients (issue 21): Hypothesis draws hostile input files
and edited contract files (tests/fuzz_strategies.py) as corpus cases, and the Python scorer and the
Node client must give the same verdict on each: accepted or refused, the exit code, the scores (to
1e-6) and copied fields, or the refusal's row and column; and each one alone must behave: no
traceback, one `error:` line last, nothing written on a refusal.

Seeded (``derandomize``: the same examples on every run) and bounded (FUZZ_EXAMPLES). The Python
scorer runs in this process; the Node client runs in one long-lived process (tests/node_driver.mjs),
as starting Node for each example would cost more than the example.

A counterexample's failure message holds it as a corpus case file: add it to tests/corpus/ with the
verdict both clients must give (``expect``), then fix the client that is wrong. With
ONNXSHIP_FUZZ_CASES=<folder> set, each counterexample is also written there.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings

from onnxship.serve import cli
from tests.conftest import REPO
from tests.corpus_cases import dump_case, edit_files, make_input
from tests.fuzz_strategies import Table, contract_edits, input_file, scorer_args
from tests.test_node_client import node_client

# A longer hunt, off CI: ONNXSHIP_FUZZ_EXAMPLES=5000 ONNXSHIP_FUZZ_SEED=7 python -m pytest tests/test_fuzz.py
FUZZ_EXAMPLES = int(os.environ.get("ONNXSHIP_FUZZ_EXAMPLES", 300))  # 14-33 s on 2 cores (load)
CONTRACT_EXAMPLES = 60
SEED = os.environ.get("ONNXSHIP_FUZZ_SEED")
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class NodeDriver:
    """The Node client's command line, run again and again in one Node process."""

    def __init__(self) -> None:
        node_client()  # its packages installed
        self.process = subprocess.Popen(
            ["node", str(REPO / "tests" / "node_driver.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def run(self, argv: list[str]) -> tuple[int, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(argv) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, "the Node driver stopped"
        result = json.loads(answer)
        return result["code"], result["stderr"]

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass
class Fuzz:
    served: Path
    table: Table
    node: NodeDriver


@pytest.fixture(scope="module")
def fuzz(staged) -> Fuzz:
    served = staged.served
    features = json.loads((served / "onnx_features.json").read_text())
    with open(served / "test.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:3]
    names = [spec["name"] for spec in features["inputs"]]
    table = Table(
        numeric=[spec["name"] for spec in features["inputs"] if spec["dtype"] == "float32"],
        categorical=[spec["name"] for spec in features["inputs"] if spec["dtype"] == "string"],
        rows=[{name: row[name] for name in names} for row in rows],
    )
    driver = NodeDriver()
    yield Fuzz(served, table, driver)
    driver.close()


# --- one verdict per client ------------------------------------------------------------------------


@dataclass
class Verdict:
    code: int | str
    stderr: str
    row: str | None = None  # a refusal's row and column, from its error line
    column: str | None = None
    scores: list[dict] = field(default_factory=list)
    wrote: list[str] = field(default_factory=list)  # files a refusal left behind

    def same_as(self, other: Verdict) -> bool:
        if (self.code, self.row, self.column) != (other.code, other.row, other.column):
            return False
        if len(self.scores) != len(other.scores):
            return False
        for mine, theirs in zip(self.scores, other.scores, strict=True):
            if {k: v for k, v in mine.items() if k != "probability"} != {
                k: v for k, v in theirs.items() if k != "probability"
            } or abs(mine["probability"] - theirs["probability"]) > 1e-6:
                return False
        return True

    def problems(self) -> list[str]:
        """What is wrong with this client's behaviour on its own."""
        lines = self.stderr.strip().splitlines()
        found = []
        if "Traceback" in self.stderr or "    at " in self.stderr or self.code not in (0, 2):
            found.append(f"a traceback or exit {self.code}")
        if self.code == 2 and not (lines and lines[-1].startswith("error: ")):
            found.append("no `error:` line last")
        if len([line for line in lines if line.startswith("error")]) > 1:
            found.append("more than one error line")
        if self.wrote:
            found.append(f"a refusal left files behind: {self.wrote}")
        return found


def verdict(code: int | str, stderr: str, output: Path, before: set[str], folder: Path) -> Verdict:
    result = Verdict(code, stderr)
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if code == 2:
        row, column = re.search(r"\brow (\d+)", last), re.search(r"column '([^']*)'", last)
        result.row, result.column = row and row.group(1), column and column.group(1)
    if code == 0 and output.is_file():
        result.scores = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    if code != 0:
        result.wrote = sorted({str(p.relative_to(folder)) for p in folder.rglob("*")} - before)
    output.unlink(missing_ok=True)
    return result


def python_verdict(argv: list[str], output: Path, folder: Path) -> Verdict:
    before = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code: int | str = cli.main(["score", *argv])
        except SystemExit as exit_info:  # argparse
            code = exit_info.code if isinstance(exit_info.code, int) else 2
        except Exception as exc:  # a traceback, for the checks to report
            code = f"{type(exc).__name__}: {exc}"[:300]
    return verdict(code, err.getvalue(), output, before, folder)


def node_verdict(driver: NodeDriver, argv: list[str], output: Path, folder: Path) -> Verdict:
    before = {str(p.relative_to(folder)) for p in folder.rglob("*")}
    code, stderr = driver.run(argv)
    return verdict(code, stderr, output, before, folder)


def run_case(fuzz: Fuzz, case: dict) -> tuple[Verdict, Verdict]:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = Path(tmp)
        artifacts = fuzz.served
        if case.get("artifacts_files"):
            artifacts = Path(shutil.copytree(fuzz.served, folder / "artifacts"))
            edit_files(artifacts, case["artifacts_files"])
        source = make_input(case["input"], fuzz.served / "test.csv", folder)
        output = folder / "out.jsonl"
        argv = ["--artifacts", str(artifacts), "--input", str(source), "--output", str(output), *case["args"]]
        return python_verdict(argv, output, folder), node_verdict(fuzz.node, argv, output, folder)


def check_case(fuzz: Fuzz, case: dict, seen: Counter | None = None) -> None:
    """Both clients behave, and agree; else fail with the case as a corpus file's text. ``seen``
    counts the verdicts (exit codes) of a test's examples."""
    python, node = run_case(fuzz, case)
    if seen is not None:
        seen[python.code if python.code in (0, 2) else "other"] += 1
    problems = [f"python: {p}" for p in python.problems()] + [f"node: {p}" for p in node.problems()]
    if not python.same_as(node):
        problems.append("python and node disagree")
    if problems:
        text = dump_case(counterexample(case, python))
        folder = os.environ.get("ONNXSHIP_FUZZ_CASES")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{case['id']}.yaml").write_text(text, encoding="utf-8")
        last = {who: v.stderr.strip().splitlines()[-1:] for who, v in (("python", python), ("node", node))}
        raise AssertionError(
            f"{'; '.join(problems)}\npython: exit {python.code} {last['python']} {python.scores[:2]}\n"
            f"node: exit {node.code} {last['node']} {node.scores[:2]}\n--- as a corpus case ---\n{text}"
        )


def counterexample(case: dict, python: Verdict) -> dict:
    """The case with an ``expect`` to review: Python's verdict, as a draft."""
    expect: dict = {"exit": python.code if python.code in (0, 2) else 2}
    if expect["exit"] == 2:
        words = [w for w in (python.row and f"row {python.row}", python.column) if w]
        expect["error"] = words or ["REVIEW: key words of the message"]
    else:
        expect.update(accepted="REVIEW: what both clients must do", rows=len(python.scores))
    return {**case, "expect": expect}


def fuzz_case(input_spec: dict, args: list[str], edits: list[dict] | None = None) -> dict:
    case = {"target": "scorers", "about": "found by tests/test_fuzz.py", "input": input_spec, "args": args}
    if edits:
        case["artifacts_files"] = edits
    digest = hashlib.sha256(json.dumps(case, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()
    return {"id": f"fuzz-{digest[:10]}", **case}


# --- the tests -------------------------------------------------------------------------------------


def test_fuzz_input_files(fuzz):
    """Hostile CSV and JSON-lines files: the same verdict from both clients."""

    seen: Counter = Counter()

    @FUZZ
    @given(data=input_file(fuzz.table), args=scorer_args(fuzz.table))
    def check(data, args):
        check_case(fuzz, fuzz_case(data, args), seen)

    (seed(int(SEED))(check) if SEED else check)()
    # A fuzzer whose files all fail (or all pass) early tests little: both verdicts are common.
    assert seen[0] >= FUZZ_EXAMPLES // 5 and seen[2] >= FUZZ_EXAMPLES // 5, seen


def test_fuzz_contract_files(fuzz):
    """Edited onnx_metadata.json / onnx_features.json: the same verdict from both clients."""
    good = {"format": "jsonl", "rows": 1}

    @settings(FUZZ, max_examples=CONTRACT_EXAMPLES)
    @given(edits=contract_edits())
    def check(edits):
        check_case(fuzz, fuzz_case(good, [], edits))

    check()


def _json_line(table: Table, name: str, raw: str) -> str:
    """A JSON line of the first test row with ``name``'s value written as ``raw`` JSON text."""
    record = json.dumps({**table.rows[0], name: None})
    return record.replace(f'"{name}": null', f'"{name}": {raw}') + "\n"


def _csv_rows(table: Table, changes: list[tuple[int, str, str]], rows: int = 2) -> str:
    """A CSV of the first ``rows`` test rows, ``changes`` (row, column, text) made, quoted if needed."""
    lines = [",".join(table.names)]
    for i in range(rows):
        record = dict(table.rows[i % len(table.rows)])
        for row, name, text in changes:
            if row == i + 1:
                record[name] = text
        cells = [f'"{v}"' if any(c in v for c in ',"\r\n') else v for v in record.values()]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


# Hostile files too large for a corpus case file (a corpus case per kind would hold megabytes): each
# is made here from the test rows, and both clients must agree and behave, as in the fuzz test.
HOSTILE = {
    "json-lone-surrogate": lambda t: _json_line(t, t.categorical[0], '"\\ud800"'),
    "json-lone-surrogate-in-an-extra-key": lambda t: '{"\\udc00": 1, ' + json.dumps(t.rows[0])[1:] + "\n",
    "json-1e400": lambda t: _json_line(t, t.numeric[0], "1e400"),
    "json-5000-digit-integer": lambda t: _json_line(t, t.numeric[0], "9" * 5000),
    "json-100000-nested-brackets": lambda t: _json_line(t, t.categorical[0], "[" * 100_000 + "]" * 100_000),
    "json-100000-open-brackets": lambda t: "[" * 100_000 + "\n",
    "json-nesting-at-the-limit": lambda t: _json_line(t, "extra", "[" * 99 + "]" * 99),
    "json-nesting-past-the-limit": lambda t: _json_line(t, "extra", "[" * 100 + "]" * 100),
    "json-200000-item-array": lambda t: _json_line(t, t.categorical[0], json.dumps(list(range(200_000)))),
    "csv-nul-past-64-kib": lambda t: _csv_rows(
        t, [(1, t.categorical[1], "x" * 70_000), (2, t.categorical[0], "KS\0zz")]
    ),
    "csv-field-at-the-limit": lambda t: _csv_rows(t, [(1, t.categorical[0], "Z" * 131_072)]),
    "csv-field-past-the-limit": lambda t: _csv_rows(t, [(1, t.categorical[0], "Z" * 131_073)]),
    "csv-field-past-the-limit-in-emoji": lambda t: _csv_rows(t, [(1, t.categorical[0], "😀" * 70_000)]),
    "csv-quoted-field-past-the-limit-over-lines": lambda t: _csv_rows(
        t, [(1, t.categorical[0], ("Z" * 60_000 + "\r\n") * 3)]
    ),
    "csv-400000-digit-number": lambda t: _csv_rows(t, [(1, t.numeric[0], "9" * 400_000)]),
    "csv-100000-commas": lambda t: _csv_rows(t, []) + "," * 100_000 + "\n",
    "csv-crlf-split-across-64-kib-chunks": lambda t: _csv_rows(
        t, [(1, t.categorical[1], "y" * (65_536 - 200))], rows=3
    ).replace("\n", "\r\n"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_file(fuzz, kind):
    fmt = "jsonl" if kind.startswith("json") else "csv"
    check_case(fuzz, fuzz_case({"name": f"rows.{fmt}", "text": HOSTILE[kind](fuzz.table)}, []))


def test_a_failed_write_is_one_line_and_leaves_nothing(fuzz, tmp_path):
    """A write that fails half-way (here a file size limit: a full disk behaves alike) is one
    `error:` line and exit 2 from both clients, and leaves no output and no temp file behind.
    (Node's writeSync may write part of its bytes without an error: the client writes the rest.)"""

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))

    out = tmp_path / "out"
    out.mkdir()
    commands = {
        "python": [sys.executable, "-m", "onnxship.serve", "score"],
        "node": ["node", str(node_client() / "score.mjs")],
    }
    for who, command in commands.items():
        argv = ["--artifacts", str(fuzz.served), "--input", str(fuzz.served / "test.csv")]
        result = subprocess.run(
            [*command, *argv, "--output", str(out / "scores.jsonl"), "--version-check", "off"],
            capture_output=True,
            text=True,
            preexec_fn=small_files,
            # No bytecode written under the size limit: a .pyc cut at 100 bytes would break every later
            # `python -m onnxship.serve` of this checkout ("marshal data too short").
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
            timeout=120,
        )
        assert result.returncode == 2, f"{who}: {result.stderr}"
        assert result.stderr.strip().splitlines() == [result.stderr.strip()], who
        assert result.stderr.startswith("error: cannot write") and "large" in result.stderr, who
        assert list(out.iterdir()) == [], who


def test_a_fuzz_case_is_a_corpus_case(fuzz):
    """The fuzzer's cases round-trip through the corpus's YAML as they are."""
    from ruamel.yaml import YAML

    case = fuzz_case({"name": "rows.csv", "text": "a\x00\ufeff\r\x85\u2028😀\n", "encoding": "utf-8"}, [])
    assert YAML(typ="safe", pure=True).load(dump_case(case)) == case
