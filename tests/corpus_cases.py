"""The bad-input corpus (tests/corpus/*.yaml): loading the cases and building their inputs.

One file per case. Every case names its ``target`` (a stage script, ``scorers`` for the Python scorer
and the Node client alike, or ``python`` / ``node`` for one of them), the inputs to make or the edits to
apply, and its ``expect``ed verdict: ``exit: 2`` with the key words of the one-line ``error:``, or an
accepted result (``exit: 0``, or 1 for the parity verdict itself) with what is documented about it.
tests/test_corpus.py runs them; docs/errors.md lists them (tools/errors_catalogue.py writes it).

Case keys (all optional but ``id``, ``target``, ``about`` and ``expect``):
- stage cases: ``params`` {dotted key: value} edits of params.yaml, ``params_replace`` [[old, new]]
  text edits, ``params_text`` (the whole file), ``params_encoding``, ``no_params``; ``csv`` (data/d.csv
  text) or ``csv_make`` (a generated file), ``csv_encoding``, ``no_csv``; ``files`` edits of files in
  the project (``path`` + one of ``text``, ``truncate``, ``delete``, ``json_delete``, ``json_set``,
  ``json_duplicate``, ``append``, ``chmod``).
- scorer cases: ``input`` (how to make the input file from the first test rows, see ``make_input``),
  ``output`` (the output path), ``artifacts_files`` (edits of the artifact files, as ``files``; an edit
  with ``rehash: true`` also records the edited onnx_features.json's sha256 in onnx_metadata.json, so
  the edit reaches the checks behind the hash), ``args`` (extra command-line arguments; ``{tmp}`` in
  one is the case's folder), ``links`` (``[{path, to, hard}]``: symbolic or hard links made in the
  case's folder, ``to`` relative to it), ``folders`` (folders made there), ``command`` (python only:
  score, check, overhead).
- fuzz cases (tests/test_fuzz.py writes its counterexamples in this format): ``input.text`` holds the
  whole file; bytes that are not UTF-8 are written with ``input.encoding: latin-1``.
- ``skip_as_root``: why the case cannot be checked when the tests run as root (chmod does not stop
  root from reading).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

CORPUS = Path(__file__).resolve().parent / "corpus"
STAGES = ("train", "export", "quantize", "parity", "benchmark", "recommend")
TARGETS = (*STAGES, "scorers", "python", "node")
KEYS = {
    "id", "target", "about", "expect", "params", "params_replace", "params_text", "params_encoding",
    "no_params", "csv", "csv_make", "csv_encoding", "no_csv", "files", "input", "output",
    "artifacts_files", "args", "command", "skip_as_root", "links", "folders",
}  # fmt: skip


def load_cases() -> list[dict]:
    """Every case, sorted by id; a malformed case file fails loudly here."""
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        case = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        assert isinstance(case, dict) and case.get("id") == path.stem, f"{path}: id must be the file name"
        assert case["target"] in TARGETS, f"{path}: target {case['target']!r}"
        assert set(case) <= KEYS, f"{path}: unknown keys {set(case) - KEYS}"
        assert case.get("about") and isinstance(case.get("expect"), dict), f"{path}: about and expect"
        expect = case["expect"]
        assert expect.get("exit") in (0, 1, 2), f"{path}: expect.exit"
        assert (expect["exit"] == 2) == bool(expect.get("error")), f"{path}: error words iff exit 2"
        assert expect["exit"] == 2 or expect.get("accepted"), f"{path}: an accepted case documents its result"
        cases.append(case)
    return cases


# --- stage inputs ----------------------------------------------------------------------------------

# A small training set that trains in a second: a numeric, a categorical column, a binary target.
GOOD_CSV = "a,c,y\n" + "".join(f"{i},{'uv'[i % 2]},{'pq'[i % 3 == 0]}\n" for i in range(40))

BASE_PARAMS = (
    "data:\n  path: data/d.csv\n  target: y\n  positive_label: 'p'\n"
    "train:\n  seed: 42\n  candidates: [logistic_regression]\n  cv_folds: 2\n"
    "parity:\n  tolerances:\n    onnx: {max_abs_diff: 1.0e-4, min_agreement: 1.0}\n"
    "    int8: {max_abs_diff: 0.05, min_agreement: 0.99}\n"
)


def make_csv(spec: dict) -> str:
    """Generated training data (kinds: stray, wide, big_cell, id_column, late_nul, row_number)."""
    kind, rows = spec["kind"], spec.get("rows", 100)
    label = ["pq"[i % 3 == 0] for i in range(rows)]
    if kind == "stray":  # column a: numbers, with spec["bad"] at the given rows
        bad = {int(k): v for k, v in spec["bad"].items()}
        cells = [bad.get(i, f"{(i % 20) * 1.5}") for i in range(rows)]
        return "a,c,y\n" + "".join(f"{cells[i]},{'uv'[i % 2]},{label[i]}\n" for i in range(rows))
    if kind == "wide":  # spec["columns"] feature columns
        names = [f"f{j}" for j in range(spec["columns"])]
        return (
            ",".join([*names, "y"])
            + "\n"
            + "".join(
                ",".join([*(str(i + j) for j in range(len(names))), label[i]]) + "\n" for i in range(rows)
            )
        )
    if kind == "big_cell":  # one categorical cell of spec["chars"] characters
        cells = ["uv"[i % 2] for i in range(rows)]
        cells[spec.get("row", 3)] = "x" * spec["chars"]
        return "a,c,y\n" + "".join(f"{i % 10},{cells[i]},{label[i]}\n" for i in range(rows))
    if kind == "id_column":  # column id: a distinct string per row
        return "id,a,c,y\n" + "".join(f"id{i:05d},{i % 10},{'uv'[i % 2]},{label[i]}\n" for i in range(rows))
    if kind == "late_nul":  # a NUL byte in a category of the last row, past the first 64 KiB
        body = "".join(f"{i % 10},{'uv'[i % 2] * 30},{label[i]}\n" for i in range(rows))
        return "a,c,y\n" + body + "1,ab\x00cd,p\n"
    if kind == "row_number":  # column n: the row number 1..rows (shuffled with spec["shuffled"])
        order = [(i * 37) % rows + 1 for i in range(rows)] if spec.get("shuffled") else range(1, rows + 1)
        return "n,a,c,y\n" + "".join(f"{n},{i % 10},{'uv'[i % 2]},{label[i]}\n" for i, n in enumerate(order))
    raise ValueError(kind)


def set_dotted(obj: dict, dotted: str, value: Any) -> None:
    """``obj[a][b] = value`` for "a.b"; a number is a list index ("inputs.0.dtype")."""
    *parents, last = dotted.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj.setdefault(part, {})
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


def params_text(case: dict, base: str) -> str:
    """params.yaml for the case: ``base`` with the case's edits."""
    if "params_text" in case:
        return case["params_text"]
    text = base
    if case.get("params"):
        yaml = YAML()  # round-trip: keeps comments and order
        doc = yaml.load(text)
        for dotted, value in case["params"].items():
            set_dotted(doc, dotted, value)
        out = io.StringIO()
        yaml.dump(doc, out)
        text = out.getvalue()
    for old, new in case.get("params_replace", []):
        assert old in text, f"{case['id']}: {old!r} not in params.yaml"
        text = text.replace(old, new)
    return text


def edit_files(root: Path, edits: list[dict]) -> None:
    """Apply ``files``/``artifacts_files`` edits under ``root``."""
    for edit in edits:
        path = root / edit["path"]
        if "text" in edit:
            path.write_text(edit["text"], encoding="utf-8")
        elif "truncate" in edit:
            path.write_bytes(path.read_bytes()[: edit["truncate"]])
        elif "append" in edit:
            path.write_bytes(path.read_bytes() + edit["append"].encode())
        elif edit.get("delete"):
            path.unlink()
        elif "json_delete" in edit:
            obj = json.loads(path.read_text())
            *parents, last = edit["json_delete"].split(".")
            node = obj
            for part in parents:
                node = node[part]
            del node[last]
            path.write_text(json.dumps(obj, indent=2))
        elif "json_set" in edit:
            obj = json.loads(path.read_text())
            for dotted, value in edit["json_set"].items():
                set_dotted(obj, dotted, value)
            path.write_text(json.dumps(obj, indent=2))
        elif "json_duplicate" in edit:  # the key once more, first, with the value it has
            obj = json.loads(path.read_text())
            key = edit["json_duplicate"]
            path.write_text(f"{{{json.dumps(key)}: {json.dumps(obj[key])}, " + path.read_text().lstrip()[1:])
        if "chmod" in edit:
            path.chmod(edit["chmod"])
        if edit.get("rehash"):
            rehash(root)


def rehash(artifacts: Path) -> None:
    """Record onnx_features.json's sha256 in onnx_metadata.json (after an edit of the features)."""
    metadata = artifacts / "onnx_metadata.json"
    obj = json.loads(metadata.read_text())
    obj["features_sha256"] = hashlib.sha256((artifacts / "onnx_features.json").read_bytes()).hexdigest()
    metadata.write_text(json.dumps(obj, indent=2))


def make_paths(case: dict, folder: Path) -> None:
    """The case's ``folders`` and ``links`` in ``folder`` (after its input is made)."""
    for name in case.get("folders", []):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for link in case.get("links", []):
        path = folder / link["path"]
        if link.get("hard"):
            os.link(folder / link["to"], path)
        else:
            os.symlink(link["to"], path)


def dump_case(case: dict) -> str:
    """A case as its YAML file's text (what load_cases reads back)."""
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.sort_base_mapping_type_on_output = False  # id, target, about first, as written
    yaml.default_flow_style = False
    yaml.width = 100
    yaml.dump(case, out)
    return out.getvalue()


def write_stage_inputs(case: dict, root: Path, base_params: str) -> None:
    """params.yaml and data/d.csv of a stage case, in ``root``."""
    if not case.get("no_params"):
        encoding = case.get("params_encoding", "utf-8")
        (root / "params.yaml").write_bytes(params_text(case, base_params).encode(encoding))
    if case["target"] == "train" and not case.get("no_csv"):
        (root / "data").mkdir(exist_ok=True)
        text = make_csv(case["csv_make"]) if "csv_make" in case else case.get("csv", GOOD_CSV)
        (root / "data" / "d.csv").write_bytes(text.encode(case.get("csv_encoding", "utf-8")))
    edit_files(root, case.get("files", []))


# --- scorer inputs ---------------------------------------------------------------------------------


def make_input(spec: dict, test_csv: Path, folder: Path) -> Path:
    """The scorer's input file, from the first ``rows`` test rows (3 by default) unless ``text`` gives
    the whole file. Edits: ``set`` [{row, column, value}] (row 1-based; a YAML value, so JSON lines
    get numbers, null, booleans), ``drop_column``, ``duplicate_column``, ``add_column``, ``line``
    {n: raw text} (replace the n-th line), ``append_lines``; then ``newline`` (a line end, or a list
    of them used in turn), ``bom``,
    ``blank_lines``, ``encoding``, and ``chmod``. ``missing: true`` makes no file."""
    name = spec.get("name", f"rows.{spec.get('format', 'csv')}")
    path = folder / name
    if spec.get("missing"):
        return path
    if spec.get("folder"):
        path.mkdir()
        return path
    if "text" in spec:
        path.write_bytes(spec["text"].encode(spec.get("encoding", "utf-8")))
        return path
    with open(test_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        records: list[dict] = list(reader)[: spec.get("rows", 3)]
        header = list(reader.fieldnames or [])
    for change in spec.get("set", []):
        assert change["column"] in header, f"no column {change['column']!r} in {test_csv}"
        records[change["row"] - 1][change["column"]] = change["value"]
    if "drop_column" in spec:
        header.remove(spec["drop_column"])
        for record in records:
            del record[spec["drop_column"]]
    if "add_column" in spec:
        header.append(spec["add_column"])
        for record in records:
            record[spec["add_column"]] = "extra"
    if spec.get("format", "csv") == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        row_header = header + ([spec["duplicate_column"]] if "duplicate_column" in spec else [])
        writer.writerow(row_header)
        for record in records:
            extra = [record[spec["duplicate_column"]]] if "duplicate_column" in spec else []
            writer.writerow([record[h] for h in header] + extra)
        lines = out.getvalue().split("\n")[:-1]  # not splitlines: a quoted cell may hold "\r"
    else:
        lines = [json.dumps(record) for record in records]
    for n, text in (spec.get("line") or {}).items():
        lines[int(n) - 1] = text
    lines += spec.get("append_lines", [])
    if spec.get("blank_lines"):
        lines = [x for line in lines for x in (line, "")]
    ends = spec.get("newline", "\n")  # one line end, or a list of them used in turn
    ends = [ends] if isinstance(ends, str) else ends
    text = "".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    data = text.encode(spec.get("encoding", "utf-8"))
    if spec.get("bom"):
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    if "chmod" in spec:
        os.chmod(path, spec["chmod"])
    return path
