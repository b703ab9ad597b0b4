"""A real non-Python client: clients/node/score.mjs (onnxruntime-node) reads the two JSON files alone
and must give the Python scorer's probabilities (within 1e-6) and exactly its decisions.

Node and npm are required: without them these tests fail, they do not skip. The npm packages are
installed here (`npm ci --ignore-scripts`: the CPU build that ships inside the package, without the
install script that downloads GPU binaries) unless the pinned version is already installed.
"""

from __future__ import annotations

import csv
import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from onnxship.serve.scorer import Scorer
from tests.conftest import REPO
from tools.web_page import install_client

CLIENT = REPO / "clients" / "node"


@functools.cache
def node_client() -> Path:
    """clients/node with its locked packages installed; fails loudly if Node or npm is missing."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH: the Node client test needs Node.js >= 18 and npm")
    return install_client(CLIENT, "onnxruntime-node")


def run_node(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", str(node_client() / "score.mjs"), *args], capture_output=True, text=True, timeout=300
    )


def edge_records(artifacts: Path) -> list[dict]:
    """Test rows as JSON, plus rows that exercise every encoding rule of the contract."""
    with open(artifacts / "test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = json.loads((artifacts / "onnx_features.json").read_text())
    numeric = [s["name"] for s in features["inputs"] if s["role"] == "numeric"]
    categorical = [s["name"] for s in features["inputs"] if s["role"] == "categorical"]
    base = rows[0]
    records = list(rows)
    for name in numeric:
        records += [
            {**base, name: None},
            {**base, name: "NA"},
            {**base, name: float(base[name]) * 3.5},  # a JSON number
            {**base, name: f" {base[name]}\t"},  # spaces and tabs around a number
            {**base, name: "1.5e2"},
            {**base, name: -1e30},
        ]
    for name in categorical:
        records += [{**base, name: None}, {**base, name: "never seen in training"}, {**base, name: "NA"}]
    return records


def python_scores(artifacts: Path, records: list[dict]) -> list[dict]:
    scorer = Scorer(artifacts)
    probability, decision = scorer.score_records(records)
    return [
        {"row": i, "probability": p, "decision": d, "label": scorer.label(d)}
        for i, (p, d) in enumerate(zip(probability.tolist(), decision.tolist(), strict=True), 1)
    ]


def assert_same_scores(node: list[dict], python: list[dict]) -> None:
    assert [r["row"] for r in node] == [r["row"] for r in python]
    worst = max(abs(n["probability"] - p["probability"]) for n, p in zip(node, python, strict=True))
    assert worst <= 1e-6, worst
    assert [r["decision"] for r in node] == [r["decision"] for r in python]
    assert [r["label"] for r in node] == [r["label"] for r in python]


def test_node_client_scores_json_lines_like_the_python_scorer(served, tmp_path):
    records = edge_records(served)
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "node.jsonl"
    result = run_node(
        "--artifacts", str(served), "--input", str(source), "--output", str(out), "--batch-size", "100"
    )
    assert result.returncode == 0, result.stderr
    node = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(node) == len(records) > 1000
    assert_same_scores(node, python_scores(served, records))
    assert any(r["decision"] for r in node) and not all(r["decision"] for r in node)


def test_node_client_scores_the_test_csv_like_the_python_scorer(served, tmp_path):
    out = tmp_path / "node.jsonl"
    result = run_node("--artifacts", str(served), "--input", str(served / "test.csv"), "--output", str(out))
    assert result.returncode == 0, result.stderr
    with open(served / "test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert_same_scores(
        [json.loads(line) for line in out.read_text().splitlines()], python_scores(served, rows)
    )


# The same refusals as the Python scorer and the parity gate (tests/test_scorer.py, test_gate_faults.py).
NODE_REFUSALS = [
    ("bad_number", "row 2 (line 2), column 'account_length': \"12,5\" is not a number"),
    ("tampered_model", "does not match the sha256 in onnx_metadata.json"),
    ("newer_schema_version", "has schema_version 2; this client reads onnx_metadata.json version 1"),
    ("features_of_another_export", "onnx_features.json does not match the sha256 in onnx_metadata.json"),
]


@pytest.mark.parametrize(("break_it", "message"), NODE_REFUSALS)
def test_node_client_refuses_bad_input_with_one_line(served, tmp_path, break_it, message):
    with open(served / "test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:3]
    if break_it == "bad_number":
        rows[1]["account_length"] = "12,5"
    elif break_it == "tampered_model":
        (served / "model.onnx").write_bytes((served / "model.onnx").read_bytes() + b"\x00")
    elif break_it == "newer_schema_version":
        metadata = json.loads((served / "onnx_metadata.json").read_text())
        (served / "onnx_metadata.json").write_text(json.dumps({**metadata, "schema_version": 2}))
    else:
        (served / "onnx_features.json").write_bytes((served / "onnx_features.json").read_bytes() + b"\n")
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "node.jsonl"
    result = run_node("--artifacts", str(served), "--input", str(source), "--output", str(out))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, result.stderr
    assert not out.exists() and list(tmp_path.glob(".node.jsonl*")) == []


def test_node_client_reads_contract_v2_like_v1(served, staged_v1, tmp_path):
    """The v2 export (packed inputs) and a v1 export of the same model (``staged_v1``) give
    byte-identical scores and the same refusals, which still name the column."""
    packed, served = served, staged_v1
    records = edge_records(served)
    bad = [*records[:3], {**records[3], "account_length": "12,5"}]
    found = {}
    for version, folder in (("v1", served), ("v2", packed)):
        for name, rows in (("good", records), ("bad", bad)):
            source, out = tmp_path / f"{name}.jsonl", tmp_path / f"{version}-{name}.jsonl"
            source.write_text("".join(json.dumps(r) + "\n" for r in rows))
            result = run_node("--artifacts", str(folder), "--input", str(source), "--output", str(out))
            found[version, name] = (
                out.read_text() if name == "good" else result.stderr.strip().splitlines()[-1]
            )
    assert found["v1", "good"] == found["v2", "good"] and len(found["v2", "good"].splitlines()) == len(
        records
    )
    assert found["v1", "bad"] == found["v2", "bad"]
    assert "row 4 (line 4), column 'account_length': \"12,5\" is not a number" in found["v2", "bad"]
    check = subprocess.run(
        ["node", str(node_client() / "check.mjs"), "--artifacts", str(packed)], capture_output=True, text=True
    )
    assert (
        check.stdout.startswith("ok: model.onnx, onnx_features.json v2, ") and "in 2 tensors" in check.stdout
    )


def test_node_client_help_prints_usage_and_exits_0():
    for flag in ("--help", "-h"):
        result = run_node(flag)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert result.stdout.startswith("usage: node score.mjs --input"), result.stdout
        assert "--version-check" in result.stdout


def test_node_and_python_name_the_same_kernel_family_and_warn_alike():
    """clients/node/cpu.mjs follows onnxship/contract/cpu.py: the same family for the same CPU flags
    (every case of tests/test_kernel_families.py), this machine's family, and the INT8 warning."""
    from onnxship.contract import cpu
    from tests.test_kernel_families import AVX512

    cases = [
        (m, sorted(f) if f is not None else None)
        for m, f in [
            ("x86_64", {"avx2"}), ("x86_64", {"avx2", "avx_vnni"}), ("x86_64", AVX512),
            ("x86_64", AVX512 | {"avx512_vnni"}), ("x86_64", AVX512 | {"avx_vnni"}),
            ("x86_64", AVX512 | {"amx_tile", "amx_int8"}), ("x86_64", {"sse4_1"}), ("x86_64", None),
            ("aarch64", {"asimd"}), ("arm64", None), ("riscv64", []),
        ]
    ]  # fmt: skip
    script = f"""
        import {{ kernelFamily, thisFamily, int8FamilyWarning, readFlags }} from "{CLIENT / "cpu.mjs"}";
        const cases = {json.dumps(cases)};
        console.log(JSON.stringify({{
          families: cases.map(([m, f]) => kernelFamily(m, f === null ? null : new Set(f))),
          here: thisFamily(),
          flags: [...readFlags("processor : 0\\nflags : fpu avx2\\n")].sort(),
          warning: int8FamilyWarning("{cpu.EXACT}", "{cpu.SATURATING}"),
          silent: [int8FamilyWarning("{cpu.EXACT}", "{cpu.EXACT}"),
                   int8FamilyWarning(undefined, "{cpu.EXACT}")],
        }}));
    """
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the Node client test needs Node.js >= 18")
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["families"] == [cpu.kernel_family(m, set(f) if f is not None else None) for m, f in cases]
    assert got["here"] == cpu.family() and got["flags"] == ["avx2", "fpu"]
    python = cpu.int8_family_warning(cpu.EXACT, cpu.SATURATING)
    assert python == f"warning: {got['warning']}" and got["silent"] == [None, None]


def test_node_client_warns_once_when_int8_runs_on_another_kernel_family(staged, tmp_path):
    """clients/node/artifacts.mjs with the INT8 backend (bench.mjs's path): one warning line when
    onnx_metadata.json records another u8s8 kernel family than this CPU's; none for FP32."""
    from onnxship.contract import cpu

    served = Path(shutil.copytree(staged.root / "artifacts", tmp_path / "artifacts"))  # with its reports

    metadata = json.loads((served / "onnx_metadata.json").read_text())
    other = cpu.EXACT if cpu.family() != cpu.EXACT else cpu.SATURATING
    (served / "onnx_metadata.json").write_text(json.dumps({**metadata, "kernel_family": other}))
    script = f"""
        import {{ loadArtifacts }} from "{node_client() / "artifacts.mjs"}";
        const fp32 = await loadArtifacts({json.dumps(str(served))}, "warn");
        const int8 = await loadArtifacts({json.dumps(str(served))}, "warn", "int8");
        await loadArtifacts({json.dumps(str(served))}, "warn", "int8");
        console.log(JSON.stringify([fp32.kernelWarning, int8.kernelWarning, int8.modelFile]));
    """
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    fp32, int8, model_file = json.loads(done.stdout)
    assert fp32 is None and model_file == "model.int8.onnx"
    assert done.stderr == f"warning: {int8}\n" and f"verified on a CPU with {other}" in int8
