"""Hypothesis strategies for tests/test_fuzz.py: hostile scorer inputs and contract edits, drawn as
corpus cases (tests/corpus_cases.py's format), so a counterexample is a case file as it stands.

A record starts from a real test row and gets hostile values (wrong types, huge/tiny numbers, NaN/inf
text, Unicode, lone surrogates, NUL, very long values, deep nesting), missing/extra/duplicate fields;
the file around it gets BOMs, LF/CRLF/lone-CR line ends, blank and white-space lines, ragged rows,
quotes, bytes that are not UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st


@dataclass(frozen=True)
class Table:
    """What the strategies draw from: the contract's columns and a few real rows (strings)."""

    numeric: list[str]
    categorical: list[str]
    rows: list[dict[str, str]]

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass(frozen=True)
class Raw:
    """A JSON value written as this text (a number JSON allows but Python's json cannot round-trip)."""

    text: str


NUMBER_TEXTS = [
    "1e400", "-1e400", "3.4e38", "3.5e38", "-3.4028235e38", "1e-400", "-0", "0", "12", "12.", ".5",
    "+.5e-3", " 12 ", "\t12", "1_000", "0x10", "nan", "NaN", "inf", "-Infinity", "Infinity", "١٢",
    "１", "\u00a012", "1e", "e5", "--1", "1,5", "NA", "N/A", "", "null", "None", "-", "nan1",
]  # fmt: skip
HOSTILE = "\x00\ufeff\r\n\"',\t \x0b\x0c\x1c\x85\u00a0\u2028é😀\\{}[]"
JSON_NUMBERS = ["1e400", "-1e400", "1E+2", "-0", "0.0", "1e-400", "9" * 400, "-" + "9" * 5000, "3.5e38", "2"]


def numbers_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBER_TEXTS),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.integers(-(10**40), 10**40).map(str),
        st.from_regex(r"[ \t]?[+-]?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?[ \t]?", fullmatch=True),
        st.text(alphabet=HOSTILE + "0123456789.eE+-", max_size=6),
    )


BENIGN_NUMBERS = [
    "12", "12.", ".5", "+.5e-3", " 12 ", "\t12", "-0", "0", "1e-400", "3.4e38", "-3.4e38", "NA", "", "null",
    "N/A", "-", "NaN", "None", "1E+2",
]  # fmt: skip


def benign_numbers_text() -> st.SearchStrategy[str]:
    """Number text both clients must accept (and encode alike)."""
    return st.one_of(
        st.sampled_from(BENIGN_NUMBERS),
        st.floats(-1e6, 1e6).map(repr),
        st.integers(-(10**6), 10**6).map(str),
    )


def benign_category_text(table: Table) -> st.SearchStrategy[str]:
    """Categories both clients must accept: seen ones, missing ones, unseen text of any sort."""
    known = sorted({row[name] for row in table.rows for name in table.categorical})
    return st.one_of(
        st.sampled_from([*known, "", "NA"]),
        st.text(alphabet="abcKS é😀\"',\r\n\t\u2028\x85\ufeff\\", max_size=8),
    )


def benign_json_values(table: Table, numeric: bool) -> st.SearchStrategy:
    if numeric:
        return st.one_of(
            benign_numbers_text(),
            st.none(),
            st.floats(-1e30, 1e30),
            st.integers(-(10**12), 10**12),
            st.sampled_from(["1E+2", "-0", "1e-400", "0.0"]).map(Raw),
        )
    return st.one_of(benign_category_text(table), st.none())


def category_text(table: Table) -> st.SearchStrategy[str]:
    known = sorted({row[name] for row in table.rows for name in table.categorical})
    return st.one_of(
        st.sampled_from([*known, "", "NA", "KS\x00zz", "\ufeffKS", "K\rS", "K\r\nS", 'K"S', "K,S"]),
        st.text(alphabet=HOSTILE + "abcKS", max_size=8),
        st.sampled_from([131072, 131073]).map(lambda n: "Z" * n),  # Python csv's field size limit
    )


def json_values(table: Table) -> st.SearchStrategy:
    """Any JSON value a field may get, hostile types included (a lone surrogate is written escaped)."""
    return st.one_of(
        numbers_text(),
        category_text(table),
        st.sampled_from(["\ud800", "x\udfff", "\ud83d\ude00"]),
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(JSON_NUMBERS).map(Raw),
        st.lists(st.integers(0, 9), max_size=3),
        st.dictionaries(st.sampled_from(["a", "b"]), st.none(), max_size=2),
        st.sampled_from([99, 100, 101, 3000]).map(lambda depth: Raw("[" * depth + "]" * depth)),
    )


@st.composite
def records(draw, table: Table, fmt: str, benign: bool = False) -> list:
    """Rows as lists of (key, value) pairs: a real row with some fields changed, left out, added or
    (JSON) given twice. ``benign``: changed to values both clients must accept, nothing left out."""
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        pairs = dict(draw(st.sampled_from(table.rows)))
        if benign:
            for name in draw(st.lists(st.sampled_from(table.names), max_size=4, unique=True)):
                numeric = name in table.numeric
                if fmt == "jsonl":
                    pairs[name] = draw(benign_json_values(table, numeric))
                else:
                    pairs[name] = draw(benign_numbers_text() if numeric else benign_category_text(table))
            rows.append(list(pairs.items()))
            continue
        values = json_values(table) if fmt == "jsonl" else None
        for name in draw(st.lists(st.sampled_from(table.names), max_size=3, unique=True)):
            if values is not None and draw(st.booleans()):
                pairs[name] = draw(values)
            else:
                pairs[name] = draw(numbers_text() if name in table.numeric else category_text(table))
        items = list(pairs.items())
        if fmt == "jsonl" and draw(st.integers(0, 9)) == 0:
            items.pop(draw(st.integers(0, len(items) - 1)))
        if fmt == "jsonl" and draw(st.integers(0, 9)) == 0:
            items.append((draw(st.sampled_from([*table.names, "extra"])), draw(values)))
        rows.append(items)
    return rows


def json_line(items: list, ascii_only: bool) -> str:
    def text(value) -> str:
        return value.text if isinstance(value, Raw) else json.dumps(value, ensure_ascii=ascii_only)

    return "{" + ", ".join(f"{json.dumps(k)}: {text(v)}" for k, v in items) + "}"


def csv_cell(value: str, quote: bool) -> str:
    if quote or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


STRAY_LINES = ["", " ", "\t", "\u00a0", "\ufeff", "\x0c", "\x1c", "\x85", "[1]", "null", '"x"', "{}"]


@st.composite
def input_file(draw, table: Table) -> dict:
    """A scorer case's ``input``: a CSV or JSON-lines file as text (latin-1 for bytes not UTF-8)."""
    fmt = draw(st.sampled_from(["csv", "jsonl"]))
    benign = draw(st.booleans())  # half the files: only what both clients must accept and score
    rows = draw(records(table, fmt, benign))
    if fmt == "jsonl":
        ascii_only = draw(st.booleans())
        lines = [json_line(items, ascii_only or _surrogates(items)) for items in rows]
    else:
        header = list(table.names)
        if draw(st.integers(0, 9)) == 0:
            header.append(draw(st.sampled_from(["extra"] if benign else ["extra", table.names[0], " state"])))
        if not benign and draw(st.integers(0, 14)) == 0:
            header.remove(draw(st.sampled_from(table.names)))
        quote = draw(st.booleans())
        lines = [",".join(csv_cell(name, quote) for name in header)]
        for items in rows:
            record = dict(items)
            cells = [csv_cell(str(record.get(name, "")), quote) for name in header]
            if not benign and draw(st.integers(0, 9)) == 0:  # a ragged row
                cells = cells[:-1] if draw(st.booleans()) else [*cells, "x"]
            lines.append(",".join(cells))
    stray = ([""] if fmt == "csv" else ["", " ", "\t"]) if benign else STRAY_LINES  # benign: blank lines
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(stray)))
    ends = draw(
        st.lists(st.sampled_from(["\n", "\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines))
    )
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    if not draw(st.integers(0, 4)):
        text = text.rstrip("\r\n")  # no line end after the last line
    if draw(st.integers(0, 5)) == 0:
        text = "\ufeff" + text
    data = text.encode("utf-8", "surrogatepass")
    if not benign and draw(st.integers(0, 11)) == 0:  # bytes that are not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3"])) + data[at:]
    try:
        spec = {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        spec = {"text": data.decode("latin-1"), "encoding": "latin-1"}
    return {"name": f"rows.{fmt}", **spec}


def _surrogates(items: list) -> bool:
    """A lone surrogate can only be written escaped (a UTF-8 file cannot hold one)."""
    return any(isinstance(v, str) and any("\ud800" <= c <= "\udfff" for c in v) for _, v in items)


@st.composite
def scorer_args(draw, table: Table) -> list[str]:
    sizes = ["1", "2", "1024", " 5", "+3", "1_0", "0", "-1", "1e3", "5.0", "0x10", "", "abc"]
    args = ["--batch-size", draw(st.sampled_from(sizes))] if draw(st.integers(0, 3)) == 0 else []
    args += ["--batch-size", str(draw(st.sampled_from([1, 2, 1024])))] if not args else []
    if draw(st.integers(0, 4)) == 0:
        args += ["--keep", draw(st.sampled_from([table.names[0], table.categorical[0], "extra"]))]
    return args


# --- contract files ------------------------------------------------------------------------------

METADATA_EDITS = {
    "threshold": [1.5, -0.25, "0.5", True, None, 0, 1, 1e-300],
    "positive_class_index": [True, 1.0, 2, -1, "1", 0],
    "negative_label": [0, None, "", "yes"],
    "positive_label": [1, None, ""],
    "class_order": [["no", "yes", "maybe"], [], "no,yes", ["no"]],
    "probability_output": ["label", "nope", 1],
    "schema_version": [True, 1.0, 2, "1"],
    "decision_operator": [">", None],
    "decision_precision": ["float32"],
    "versions.onnxruntime": ["0.1.0", 1, "x"],
}
FEATURE_EDITS = {
    "encoding.numeric.number_pattern": ["(", "^\\d+$", "", "[0-9]+", "^[0-9.]+$"],
    "encoding.numeric.missing_tokens": ["NA", [1], [], ["", "NA", "7"]],
    "encoding.categorical.missing_tokens": [["NA"], [], "x"],
    "inputs.0.dtype": ["float64", "string", None],
    "inputs.0.name": ["", "state", 3],
    "schema_version": [True, 1.0, "1"],
    "missing_field": ["ignore"],
}


@st.composite
def contract_edits(draw) -> list[dict]:
    """``artifacts_files`` edits: one or two changed keys of the metadata or the features (rehashed,
    so the change reaches the checks behind the features' sha256), or a key left out."""
    edits = []
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            key = draw(st.sampled_from(sorted(METADATA_EDITS)))
            edit = {"path": "onnx_metadata.json"}
            if draw(st.integers(0, 5)) == 0:
                edit["json_delete"] = key
            else:
                edit["json_set"] = {key: draw(st.sampled_from(METADATA_EDITS[key]))}
        else:
            key = draw(st.sampled_from(sorted(FEATURE_EDITS)))
            edit = {"path": "onnx_features.json", "rehash": True}
            edit["json_set"] = {key: draw(st.sampled_from(FEATURE_EDITS[key]))}
        edits.append(edit)
    return edits
