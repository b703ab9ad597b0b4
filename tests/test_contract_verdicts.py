"""One schema, enforced by both clients: the Python loader (``Scorer``: ``artifacts.load`` and the graph
check) and the JavaScript clients' (clients/node/check.mjs, contract.mjs's ``loadContract``) give
the same verdict, word for word, on the same mutated contract files.

Each case edits a copy of the staged artifacts (a features edit gets its new sha256 written into the
metadata, so that the edit itself is what is judged). ``node_check`` is the Node half, for any test
that mutates contract files (the differential fuzzer too).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from onnxship.contract import artifacts as artifacts_module
from onnxship.contract import runtime, schema
from onnxship.core.errors import UserError
from tests.test_node_client import node_client
from tools.web_page import install_client


def node_check(artifacts: Path) -> tuple[int, str]:
    """(exit code, the one line) of the JavaScript clients' check of an artifacts folder."""
    result = subprocess.run(
        ["node", str(node_client() / "check.mjs"), "--artifacts", str(artifacts)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (result.stderr if result.returncode else result.stdout).strip().splitlines()
    return result.returncode, lines[-1] if lines else ""


def python_check(artifacts: Path) -> tuple[int, str]:
    """The same for the Python loader (what ``Scorer`` runs before it builds its encoder): (0, "ok")
    or (2, "error: ...")."""
    try:
        contract = artifacts_module.load(artifacts)
        artifacts_module.check_graph(contract, runtime.session(contract.model))
    except UserError as exc:
        return 2, f"error: {exc}"
    return 0, "ok"


def features_edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """Edit onnx_features.json and record its new sha256 in the metadata."""

    def edit(folder: Path) -> None:
        features = json.loads((folder / "onnx_features.json").read_text())
        change(features)
        data = json.dumps(features, indent=2).encode()
        (folder / "onnx_features.json").write_bytes(data)
        metadata_edit(lambda m: m.update(features_sha256=hashlib.sha256(data).hexdigest()))(folder)

    return edit


def metadata_edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        metadata = json.loads((folder / "onnx_metadata.json").read_text())
        change(metadata)
        (folder / "onnx_metadata.json").write_text(json.dumps(metadata, indent=2))

    return edit


def metadata_text(field: str, written: str) -> Callable[[Path], None]:
    """Write ``field``'s value as the JSON text ``written`` (1e400, NaN, 1.0: what json.dumps cannot)."""

    def edit(folder: Path) -> None:
        path = folder / "onnx_metadata.json"
        text, count = re.subn(rf'"{field}": [^,\n]+', f'"{field}": {written}', path.read_text(), count=1)
        assert count == 1
        path.write_text(text)

    return edit


def metadata_bytes(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "onnx_metadata.json"
        path.write_bytes(change(path.read_bytes()))

    return edit


def pattern(text: str) -> Callable[[Path], None]:
    return features_edit(lambda f: f["encoding"]["numeric"].update(number_pattern=text))


def swap_labels(m: dict) -> None:
    m["positive_label"], m["negative_label"] = m["negative_label"], m["positive_label"]


def rename_first_input(f: dict) -> None:
    f["inputs"][0]["onnx_name"] = "renamed"


# (id, edit, words of the one line both clients print; None: both accept)
CASES = [
    (
        "threshold-above-1",
        metadata_edit(lambda m: m.update(threshold=1.5)),
        "$.threshold is 1.5, but it must be at most 1",
    ),
    (
        "threshold-below-0",
        metadata_edit(lambda m: m.update(threshold=-0.25)),
        "$.threshold is -0.25, but it must be at least 0",
    ),
    ("threshold-text", metadata_edit(lambda m: m.update(threshold="abc")), "must be of type number"),
    ("threshold-1e400", metadata_text("threshold", "1e400"), "is Infinity, but it must be of type number"),
    ("threshold-nan", metadata_text("threshold", "NaN"), "is not valid JSON"),
    ("metadata-bom", metadata_bytes(lambda b: b"\xef\xbb\xbf" + b), "is not valid JSON"),
    ("metadata-utf16", metadata_bytes(lambda b: b.decode().encode("utf-16")), "is not valid JSON"),
    ("metadata-deep", metadata_text("threshold", "[" * 100_000 + "]" * 100_000), "onnx_metadata.json"),
    (
        "class-index-true",
        metadata_edit(lambda m: m.update(positive_class_index=True)),
        "$.positive_class_index is true, but it must be of type integer",
    ),
    ("class-index-2", metadata_edit(lambda m: m.update(positive_class_index=2)), "must be one of [0, 1]"),
    ("class-index-1.0", metadata_text("positive_class_index", "1.0"), None),
    (
        "negative-label-number",
        metadata_edit(lambda m: m.update(negative_label=0)),
        "$.negative_label is 0, but it must be of type string",
    ),
    (
        "class-order-3",
        metadata_edit(lambda m: m.update(class_order=["no", "yes", "maybe"])),
        "must have at most 2 items",
    ),
    (
        "class-order-repeated",
        metadata_edit(lambda m: m.update(class_order=["yes", "yes"])),
        "must not repeat an item",
    ),
    ("labels-swapped", metadata_edit(swap_labels), "the positive class would be"),
    (
        "probability-output-label",
        metadata_edit(lambda m: m.update(probability_output="label")),
        '$.probability_output is "label", but it must be "probabilities"',
    ),
    ("model-file-elsewhere", metadata_edit(lambda m: m.update(model_file="../model.onnx")), "$.model_file"),
    (
        "decision-operator",
        metadata_edit(lambda m: m.update(decision_operator=">")),
        '$.decision_operator is ">", but it must be ">="',
    ),
    ("versions-missing", metadata_edit(lambda m: m.pop("versions")), "$.versions is missing"),
    (
        "extra-field",
        metadata_edit(lambda m: m.update(undocumented=1)),
        "$.undocumented is not a contract field",
    ),
    ("metadata-version-2", metadata_edit(lambda m: m.update(schema_version=2)), "has schema_version 2"),
    ("model-sha256-short", metadata_edit(lambda m: m.update(model_sha256="abc")), "$.model_sha256"),
    ("input-dtype", features_edit(lambda f: f["inputs"][0].update(dtype="float64")), "$.inputs[0].dtype"),
    (
        "input-repeated",
        features_edit(lambda f: f["inputs"].append(dict(f["inputs"][0]))),
        "repeats $.inputs[0].name",
    ),
    ("graph-inputs", features_edit(rename_first_input), "the model has inputs ["),
    (
        "features-version-3",
        features_edit(lambda f: f.update(schema_version=3)),
        "this client reads onnx_features.json version 1 and 2",
    ),
    ("pattern-not-a-regex", pattern("(["), "$.encoding.numeric.number_pattern"),
    (
        "pattern-unbalanced",
        pattern("(1"),
        "must be a regular expression in the syntax Python and ECMAScript share",
    ),
    ("pattern-python-only-named", pattern("(?P<x>1)"), "must be a regular expression in the syntax"),
    ("pattern-python-only-brace", pattern("^1{,3}$"), "must be a regular expression in the syntax"),
    ("pattern-ecmascript-only-empty-class", pattern("^[]$"), "must be a regular expression in the syntax"),
    ("pattern-ecmascript-only-named", pattern("(?<x>1)"), "must be a regular expression in the syntax"),
    ("pattern-possessive", pattern("^1*+$"), "must be a regular expression in the syntax"),
    ("pattern-unicode-digit-class", pattern(r"^\d+$"), "must be a regular expression in the syntax"),
    ("pattern-trailing-newline", pattern("^1$\n"), "must be a regular expression in the syntax"),
    ("pattern-range-reversed", pattern("^[9-0]$"), "must be a regular expression in the syntax"),
    ("pattern-other-valid", pattern(r"^[ \t]*-?[0-9]+(?:\.[0-9]+)?[ \t]*$"), None),
    ("accepted-as-built", lambda folder: None, None),
]


def v2_tensor(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return features_edit(lambda f: change(f["tensors"][0]))


def v2_input(i: int, change: Callable[[dict], None]) -> Callable[[Path], None]:
    return features_edit(lambda f: change(f["inputs"][i]))


V2_CASES = [
    ("v2-accepted", lambda folder: None, None),
    ("v2-index-off", v2_input(1, lambda s: s.update(index=5)), "$.inputs[1].index is 5, but it must be 1"),
    ("v2-index-negative", v2_input(0, lambda s: s.update(index=-1)), "$.inputs[0].index is -1"),
    ("v2-tensor-unknown", v2_input(0, lambda s: s.update(tensor="other")), "is not one of the $.tensors"),
    ("v2-role-mismatch", v2_input(0, lambda s: s.update(tensor="categorical")), "but its tensor"),
    ("v2-shape-count", v2_tensor(lambda t: t["shape"].__setitem__(1, 99)), "but 15 inputs name it"),
    ("v2-shape-fixed-rows", v2_tensor(lambda t: t["shape"].__setitem__(0, 1)), "$.tensors[0].shape[0] is 1"),
    ("v2-dtype-role", v2_tensor(lambda t: t.update(dtype="string")), "$.tensors[0].dtype"),
    ("v2-onnx-name-kept", v2_input(0, lambda s: s.update(onnx_name="x")), "is not a contract field"),
    ("v2-graph-renamed", v2_tensor(lambda t: t.update(onnx_name="floats")), "is not one of the $.tensors"),
]


def _contract(source: Path, folder: Path) -> Path:
    """model.onnx and its two JSON files from ``source``, in ``folder``."""
    folder.mkdir()
    for name in ("model.onnx", "onnx_features.json", "onnx_metadata.json"):
        shutil.copy2(source / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def contract_v1(staged_v1, tmp_path_factory) -> Path:
    """The staged model exported as contract v1 (one [n, 1] input per column)."""
    return _contract(staged_v1, tmp_path_factory.mktemp("verdicts") / "v1")


@pytest.fixture(scope="module")
def contract_v2(staged, tmp_path_factory) -> Path:
    """The staged contract as exported: v2 (packed inputs)."""
    return _contract(staged.root / "artifacts", tmp_path_factory.mktemp("verdicts") / "v2")


@pytest.mark.parametrize(("edit", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_both_clients_give_the_same_verdict_word_for_word(contract_v1, tmp_path, edit, words):
    same_verdict(contract_v1, tmp_path, edit, words)


@pytest.mark.parametrize(("edit", "words"), [c[1:] for c in V2_CASES], ids=[c[0] for c in V2_CASES])
def test_both_clients_give_the_same_verdict_on_contract_v2(contract_v2, tmp_path, edit, words):
    same_verdict(contract_v2, tmp_path, edit, words)


def same_verdict(contract: Path, tmp_path: Path, edit: Callable[[Path], None], words: str | None) -> None:
    folder = Path(shutil.copytree(contract, tmp_path / "artifacts"))
    edit(folder)
    python, node = python_check(folder), node_check(folder)
    if words is None:
        assert python[0] == node[0] == 0, (python, node)
        return
    assert python[0] == node[0] == 2, (python, node)
    assert words in python[1], python
    assert "\n" not in python[1]
    if words in ("is not valid JSON", "onnx_metadata.json"):  # the parsers' own details differ
        assert node[1].split(" (")[0] == python[1].split(" (")[0], (python, node)
    else:
        assert node[1] == python[1]


def test_every_field_the_probe_found_loose_is_a_case():
    ids = " ".join(c[0] for c in CASES)
    for field in (
        "threshold",
        "class-index",
        "negative-label",
        "class-order",
        "probability-output",
        "pattern",
    ):
        assert field in ids, field


def test_the_number_pattern_grammar_is_one_regex_in_both_syntaxes():
    """The schema's own pattern for number_pattern compiles alike in Python and ECMAScript (u flag),
    and accepts the pattern the export writes."""
    features = schema.load("onnx_features", 1)
    grammar = features["properties"]["encoding"]["properties"]["numeric"]["properties"]["number_pattern"]
    from onnxship.contract.spec import NUMBER_PATTERN

    assert re.search(grammar["pattern"], NUMBER_PATTERN)
    script = "console.log(new RegExp(process.argv[1], 'u').test(process.argv[2]))"
    result = subprocess.run(
        ["node", "-e", script, grammar["pattern"], NUMBER_PATTERN], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "true", result.stderr


def test_the_compiled_javascript_validators_are_current(tmp_path):
    """clients/node/schemas.mjs is what build_schemas.mjs makes of schemas/*.json today."""
    fresh = tmp_path / "schemas.mjs"
    client = install_client(node_client(), "ajv")  # a development dependency: only this build needs it
    subprocess.run(["node", str(client / "build_schemas.mjs"), str(fresh)], check=True, timeout=120)
    committed = (client / "schemas.mjs").read_text()
    assert fresh.read_text() == committed, "run `node clients/node/build_schemas.mjs` and commit schemas.mjs"
    assert "require(" not in committed and "\nimport " not in committed  # loads in a browser as it is
