"""The web client (clients/web) in a real browser: Debian's Chromium driven by Playwright for Python,
the page served by a static server at the repository root (tools/web_page.py), onnxruntime-web from
npm. The page must give the Python scorer's decisions (probabilities within 1e-6) on the held-out
rows, FP32 and INT8; the shared hostile cases of tests/corpus that a CSV page can meet must get the
verdicts Python and Node give; tampered artifacts must reject ``onnxshipReady``.

Without a browser (no /usr/bin/chromium) these tests skip and say how to install one. One browser
for the module; the artifacts are the in-process build of tests/conftest.py (``staged``).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from onnxship.serve import cli
from onnxship.serve.scorer import Scorer
from tests.corpus_cases import edit_files, load_cases, make_input
from tests.test_corpus import node_run, python_run
from tools import web_page

WHY_NOT = web_page.missing_browser()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))

BUILT = "built"  # the staged artifacts, under the server's mount


@pytest.fixture(scope="module")
def mount(staged, tmp_path_factory) -> Path:
    """The folder the server mounts: the staged artifacts (reports and plots too) as ``built/``."""
    root = tmp_path_factory.mktemp("web_mount")
    shutil.copytree(staged.root / "artifacts", root / BUILT)
    return root


@pytest.fixture(scope="module")
def site(mount):
    web_page.install_client()
    with web_page.static_server(mount) as base, web_page.chromium() as browser:
        yield base, browser


def open_page(site, folder: str, backend: str | None = None):
    base, browser = site
    return web_page.open_page(browser, web_page.page_url(base, web_page.MOUNT + folder, backend))


@pytest.fixture(scope="module")
def built_page(site):
    page, ready = open_page(site, f"{BUILT}/")
    assert "ok" in ready, ready
    yield page
    page.close()


def csv_records(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("backend", ["fp32", "int8"])
def test_page_scores_the_held_out_rows_like_the_python_scorer(site, mount, backend):
    artifacts = mount / BUILT
    page, ready = open_page(site, f"{BUILT}/", backend)
    model = "model.int8.onnx" if backend == "int8" else "model.onnx"
    assert ready.get("ok", {}).get("model") == model, ready
    result = web_page.score(page, (artifacts / "test.csv").read_bytes())
    page.close()
    scorer = Scorer(artifacts, model_file=model if backend == "int8" else None)
    records = csv_records(artifacts / "test.csv")
    probability, decision = scorer.score_records(records)
    assert result["invalid"] == []
    assert [r["row"] for r in result["rows"]] == list(range(1, len(records) + 1))
    assert [r["decision"] for r in result["rows"]] == decision.tolist()
    assert [r["label"] for r in result["rows"]] == [scorer.label(d) for d in decision.tolist()]
    worst = max(abs(r["probability"] - p) for r, p in zip(result["rows"], probability.tolist(), strict=True))
    assert worst <= 1e-6, worst
    assert 0 < sum(decision) < len(records)


def test_page_reads_contract_v1_like_v2(site, mount, built_page, staged_v1):
    """The built page reads the v2 export (packed inputs, by tensor and index); a v1 export of the same
    model (``staged_v1``) gives its rows exactly, a bad row named by its column as before."""
    shutil.copytree(staged_v1, mount / "v1")
    page, ready = open_page(site, "v1/")
    assert "ok" in ready, ready
    rows = (mount / BUILT / "test.csv").read_text().splitlines()
    picked = "\n".join([*rows[:6], rows[7].replace(",", ",x", 1)]) + "\n"
    for csv_bytes in ((mount / BUILT / "test.csv").read_bytes(), picked.encode()):
        assert web_page.score(page, csv_bytes) == web_page.score(built_page, csv_bytes)
    invalid = web_page.score(page, picked.encode())["invalid"]
    assert len(invalid) == 1 and "row 6 (line 7), column" in invalid[0]["error"]
    page.close()


# --- the shared hostile corpus ---------------------------------------------------------------------


def applies_to_page(case: dict) -> bool:
    """A shared scorer case about the artifacts or a CSV's content: not about files on disk (a missing
    input, a suffix, a mode), the output, JSON lines, or command-line options but --artifacts."""
    spec = case.get("input", {})
    args = case.get("args", [])
    return (
        case["target"] == "scorers"
        and spec.get("format", "csv") == "csv"
        and not {"missing", "folder", "chmod", "name"} & set(spec)
        and "output" not in case
        and not {"links", "folders"} & set(case)
        and "modes" not in case["expect"]
        and (not args or (len(args) == 2 and args[0] == "--artifacts"))
    )


PAGE_CASES = [pytest.param(c, id=c["id"]) for c in load_cases() if applies_to_page(c)]


def page_verdict(site, built_page, case: dict, folder: str, source: Path) -> dict:
    """The page's verdict: {"error": line} (refused), or {"rows", "invalid"}."""
    if folder == f"{BUILT}/":
        return web_page.score(built_page, source.read_bytes())
    page, ready = open_page(site, folder)
    try:
        return ready if "error" in ready else web_page.score(page, source.read_bytes())
    finally:
        page.close()


def has_words(case: dict, line: str) -> bool:
    return all(w.lower() in line.lower() for w in case["expect"]["error"])


def python_skipping(artifacts: Path, source: Path, tmp_path: Path, capsys) -> tuple[list[int], list[int]]:
    """(scored rows, invalid rows) of the Python scorer with --skip-invalid."""
    out, summary = tmp_path / "skip.jsonl", tmp_path / "summary.json"
    argv = ["score", "--artifacts", str(artifacts), "--input", str(source), "--output", str(out)]
    assert cli.main([*argv, "--skip-invalid", "--summary", str(summary)]) == 0, capsys.readouterr().err
    scored = [json.loads(line)["row"] for line in out.read_text().splitlines()]
    return scored, [bad["row"] for bad in json.loads(summary.read_text())["invalid"]]


@pytest.mark.parametrize("case", PAGE_CASES)
def test_corpus_case_gets_the_verdict_of_python_and_node(case, site, built_page, mount, tmp_path, capsys):
    folder, artifacts = f"{BUILT}/", mount / BUILT
    if case.get("artifacts_files") or case.get("args"):
        folder = f"cases/{case['id']}/"
        artifacts = Path(shutil.copytree(mount / BUILT, mount / folder))
        edit_files(artifacts, case.get("artifacts_files", []))
        if case.get("args"):  # --artifacts elsewhere: a folder that does not exist
            folder, artifacts = f"{folder}{case['args'][1]}/", artifacts / case["args"][1]
    source = make_input(case.get("input", {}), mount / BUILT / "test.csv", tmp_path)
    outputs = {who: tmp_path / f"{who}.jsonl" for who in ("python", "node")}
    clients = {
        "python": python_run({**case, "args": []}, artifacts, source, outputs["python"], capsys),
        "node": node_run({**case, "args": []}, artifacts, source, outputs["node"]),
    }
    page = page_verdict(site, built_page, case, folder, source)
    if case["expect"]["exit"] == 2:
        for who, (code, stderr) in clients.items():
            assert code == 2 and has_words(case, stderr.strip().splitlines()[-1]), f"{who}: {stderr}"
        if "error" in page:  # the whole file or the artifacts refused, with the clients' one line
            assert page["error"].startswith("error: ") and has_words(case, page["error"]), page
        else:  # a row that breaks the contract: listed, the others scored (Python's --skip-invalid)
            assert page["invalid"] and has_words(case, page["invalid"][0]["error"]), page
            scored, invalid = python_skipping(artifacts, source, tmp_path, capsys)
            assert [r["row"] for r in page["rows"]] == scored
            assert [bad["row"] for bad in page["invalid"]] == invalid
        return
    assert "error" not in page and page["invalid"] == [], page
    assert len(page["rows"]) == case["expect"]["rows"]
    for who, (code, stderr) in clients.items():
        assert code == 0, f"{who}: {stderr}"
        theirs = [json.loads(line) for line in outputs[who].read_text().splitlines()]
        assert [r["row"] for r in page["rows"]] == [r["row"] for r in theirs], who
        assert [r["decision"] for r in page["rows"]] == [r["decision"] for r in theirs], who
        for mine, their in zip(page["rows"], theirs, strict=True):
            assert abs(mine["probability"] - their["probability"]) <= 1e-6, who


def test_the_page_meets_every_case_a_csv_page_can_meet():
    ids = {p.id for p in PAGE_CASES}
    assert len(ids) >= 20
    assert {"artifacts-truncated-model", "artifacts-threshold-out-of-range", "input-ragged-row"} <= ids


# --- tampered artifacts ----------------------------------------------------------------------------

TAMPERED = [
    ("threshold_1_5", None, "$.threshold is 1.5, but it must be at most 1"),
    ("model_sha256", None, "model.onnx does not match the sha256 in onnx_metadata.json"),
    ("features_sha256", None, "onnx_features.json does not match the sha256 in onnx_metadata.json"),
    ("int8_model", "int8", "model.int8.onnx does not match the sha256 in quantize_report.json"),
]


@pytest.mark.parametrize(("tamper", "backend", "message"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_artifacts_reject_onnxship_ready(site, mount, tamper, backend, message):
    folder = f"tampered/{tamper}/"
    artifacts = Path(shutil.copytree(mount / BUILT, mount / folder))
    metadata = json.loads((artifacts / "onnx_metadata.json").read_text())
    if tamper == "threshold_1_5":
        metadata["threshold"] = 1.5
    elif tamper in ("model_sha256", "features_sha256"):
        metadata[tamper] = "0" * 64
    else:
        (artifacts / "model.int8.onnx").write_bytes((artifacts / "model.int8.onnx").read_bytes() + b"\0")
    (artifacts / "onnx_metadata.json").write_text(json.dumps(metadata, indent=2))
    page, ready = open_page(site, folder, backend)
    assert ready.get("error", "").startswith("error: ") and message in ready["error"], ready
    assert "\n" not in ready["error"]
    assert page.inner_text("#status") == ready["error"]  # the page says it too, and offers no input
    assert not page.is_visible("#input")
    page.close()


# --- the page itself -------------------------------------------------------------------------------


def test_the_page_scores_a_picked_file_and_draws_the_model_card(site, mount, tmp_path):
    base, browser = site
    page, ready = web_page.open_page(browser, web_page.page_url(base, web_page.MOUNT + f"{BUILT}/"))
    assert "ok" in ready, ready
    rows = (mount / BUILT / "test.csv").read_text().splitlines()
    picked = tmp_path / "picked.csv"
    picked.write_text("\n".join([*rows[:6], rows[7].replace(",", ",x", 1)]) + "\n")  # one bad row
    page.set_input_files("#file", str(picked))
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_selector("#card[data-ready=true]")
    assert page.inner_text("#result-summary").startswith("picked.csv: 5 rows scored")
    assert page.locator("#scores tbody tr").count() == 5
    assert "row 6 (line 7), column" in page.inner_text("#invalid")
    with page.expect_download() as download:
        page.click("#download")
    mine = csv_records(Path(download.value.path()))
    theirs = tmp_path / "python.csv"  # the Python scorer's CSV scores of the same file, bad row skipped
    argv = ["score", "--artifacts", str(mount / BUILT), "--input", str(picked), "--output", str(theirs)]
    assert cli.main([*argv, "--skip-invalid"]) == 0
    python = csv_records(theirs)
    assert list(mine[0]) == list(python[0]) == ["row", "probability", "decision", "label"]
    assert [(r["row"], r["decision"], r["label"]) for r in mine] == [
        (r["row"], r["decision"], r["label"]) for r in python
    ]
    pairs = zip(mine, python, strict=True)
    worst = max(abs(float(a["probability"]) - float(b["probability"])) for a, b in pairs)
    assert len(mine) == 5 and worst <= 1e-6, worst
    card = page.inner_text("#card")
    for words in ("held-out", "Parity: passed", "ONNX FP32", "INT8", "Recommended:", "threshold"):
        assert words in card, card
    assert page.locator("#card svg").count() == 2 and page.locator("#card svg circle").count() == 2
    # A file dropped on the page, with a column missing: the whole file refused, in one line.
    dropped = page.evaluate_handle(
        """text => { const data = new DataTransfer();
                     data.items.add(new File([text], "dropped.csv", {type: "text/csv"})); return data; }""",
        "\n".join(line.split(",", 1)[1] for line in rows[:4]) + "\n",
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    page.wait_for_function("document.querySelector('#score-error').textContent !== ''")
    assert page.inner_text("#score-error") == (
        "error: dropped.csv has no column 'state': the model needs every input column"
    )
    assert not page.is_visible("#result")
    page.screenshot(path=str(tmp_path / "web-client.png"))
    assert (tmp_path / "web-client.png").stat().st_size > 20_000
    page.close()


def test_without_npm_ci_the_page_says_how_to_install_its_runtime(site, mount):
    base, browser = site
    site_copy = mount / "no_npm_ci" / "clients"  # the page's own files, without node_modules
    (site_copy / "node").mkdir(parents=True)
    for module in ("contract.mjs", "checks.mjs", "schemas.mjs"):
        shutil.copy2(web_page.REPO / "clients" / "node" / module, site_copy / "node")
    shutil.copytree(web_page.CLIENT, site_copy / "web", ignore=shutil.ignore_patterns("node_modules"))
    url = f"{base}{web_page.MOUNT}no_npm_ci/clients/web/index.html?artifacts={web_page.MOUNT}{BUILT}/"
    page, ready = web_page.open_page(browser, url)
    assert ready.get("error", "").startswith("error: the page's modules cannot be loaded: run `npm ci"), ready
    assert page.inner_text("#status") == ready["error"]
    page.close()
