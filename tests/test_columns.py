"""The column path (onnxship.contract.columns, Encoder.columns, CSV chunks) gives exactly what the
per-cell rule and csv.reader give: the same values, bit for bit, and the same refusals.

Seeded and bounded property tests (Hypothesis) on random cells drawn to hit the edges of the number
syntax (signs, dots, exponents, spaces, missing tokens, long digit strings), plus hand-picked cells.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnxship.contract import columns, spec
from onnxship.contract.columns import csv_cells, parse_numbers, string_cells
from onnxship.contract.encode import Encoder, InvalidRecord, number_converter, numbers_converter
from onnxship.core.errors import UserError
from onnxship.serve import chunks
from onnxship.serve.files import FileOptions, read_csv_records, score_file
from onnxship.serve.scorer import Scorer

TO_NUMBER = number_converter()
TO_NUMBERS = numbers_converter(TO_NUMBER)
MISSING = frozenset(spec.NUMERIC_MISSING)

number_text = st.one_of(
    st.text(alphabet="0123456789.+-eE \t", max_size=11),
    st.text(alphabet="0123456789", min_size=1, max_size=10),
    st.builds(lambda x, d: f"{x:.{d}f}", st.floats(-1e6, 1e6), st.integers(0, 6)),
    st.sampled_from([*sorted(MISSING), "0", "1", "-0", "+.5", "5.", ".", "1e400", "inf", "NaN", "٣", "1_0"]),
)
json_value = st.one_of(
    number_text,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**310), 10**310),
    st.none(),
    st.booleans(),
)


def per_cell(cells: list) -> tuple[np.ndarray | None, str | None]:
    """The per-cell rule's values, or the first refusal's message."""
    try:
        return np.array([TO_NUMBER(cell) for cell in cells], dtype=np.float64), None
    except ValueError as exc:
        return None, str(exc)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(number_text, min_size=1, max_size=80))
def test_parse_numbers_decides_only_what_the_rule_decides_alike(cells):
    data = string_cells(cells)
    if data is None:  # a cell that is not ASCII: the column is read cell by cell
        assert not "".join(cells).isascii()
        return
    values, decided = parse_numbers(*data, MISSING)
    for cell, value, done in zip(cells, values.tolist(), decided.tolist(), strict=True):
        if done:
            expected = TO_NUMBER(cell)  # a decided cell is never one the rule refuses
            assert np.float64(value).tobytes() == np.float64(expected).tobytes(), cell


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(json_value, min_size=0, max_size=150))
def test_a_whole_column_reads_as_cell_by_cell(cells):
    expected, refusal = per_cell(cells)
    if refusal is None:
        assert same_bits(TO_NUMBERS(cells), expected)
    else:
        with pytest.raises(ValueError) as error:
            TO_NUMBERS(cells)
        assert str(error.value) == refusal  # the first refused cell, as the per-cell loop meets it


@pytest.mark.parametrize(
    "cell",
    [
        *["0", "7", "-0", "+0", "12.5", "-.5", "5.", "99999999", "-9999999.", "0.000001", "12345678.9"],
        *["0.1234567890123", "-123456.789012345", "9007199254740992", ".123456789", "+12345678."],
    ],
)
def test_plain_decimals_are_decided_and_exact(cell):
    """Up to 16 characters after the sign; a mantissa of at most 2**53 (2**53 itself included)."""
    values, decided = parse_numbers(*string_cells([cell] * 3), MISSING)
    assert decided.all()
    assert same_bits(values, np.full(3, float(cell)))


def test_long_decimals_are_decided_and_exact():
    """repr and printf-style floats of 9 characters and more: every one the fast path decides has
    the rule's value bit for bit, those with a mantissa past 2**53 or over 16 characters are left to
    the rule, and printf-style ones (%.Nf, N < 15) are nearly all decided (else a wide float table
    would be read cell by cell)."""
    rng = np.random.default_rng(3)
    floats = np.concatenate([rng.random(2000), rng.normal(0, 1e4, 2000), rng.lognormal(0, 6, 2000)])
    cells = [repr(x) for x in floats.tolist()] + [f"{x:.{rng.integers(1, 15)}f}" for x in floats.tolist()]
    cells += [f"-{c}" if i % 3 == 0 else c for i, c in enumerate(["9007199254740993", "900719925474099.3"])]
    values, decided = parse_numbers(*string_cells(cells), MISSING)
    for cell, value, done in zip(cells, values.tolist(), decided.tolist(), strict=True):
        if done:
            assert np.float64(value).tobytes() == np.float64(float(cell)).tobytes(), cell
        if done:  # never an exponent, over 16 characters or a mantissa past 2**53
            assert "e" not in cell and len(cell.lstrip("+-")) <= 16, cell
            assert int(cell.lstrip("+-").replace(".", "")) <= 2**53, cell
    assert not decided[-2:].any()  # mantissas of 2**53 + 1
    printf = decided[len(floats) : 2 * len(floats)]
    assert printf.mean() > 0.9, printf.mean()


FEATURES = {
    "encoding": spec.ENCODING,
    "inputs": [
        {"name": name, "onnx_name": name, "dtype": dtype}
        for name, dtype in [("a", "float32"), ("s", "string"), ("b", "float32"), ("c", "float32")]
    ],
}


V2_FEATURES = {
    "schema_version": 2,
    "encoding": spec.ENCODING,
    "tensors": [
        {"onnx_name": "numeric", "dtype": "float32", "shape": [None, 3], "role": "numeric"},
        {"onnx_name": "categorical", "dtype": "string", "shape": [None, 1], "role": "categorical"},
    ],
    "inputs": [  # the numeric tensor's columns in another order than the inputs'
        {"name": name, "dtype": dtype, "tensor": tensor, "index": index}
        for name, dtype, tensor, index in [
            ("a", "float32", "numeric", 2),
            ("s", "string", "categorical", 0),
            ("b", "float32", "numeric", 0),
            ("c", "float32", "numeric", 1),
        ]
    ],
}


def by_rows(encoder: Encoder, records: list[dict]) -> dict[str, np.ndarray]:
    return encoder.feeds([encoder.values(r, i) for i, r in enumerate(records, 1)])


def same_feeds(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> bool:
    assert list(got) == list(expected)
    for name, array in expected.items():
        if array.dtype == object:
            assert got[name].shape == array.shape and got[name].tolist() == array.tolist(), name
        else:
            assert same_bits(got[name], array), name
    return True


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    st.lists(
        st.tuples(
            number_text,
            st.text(st.characters(exclude_categories=("Cs",)), max_size=4),
            number_text,
            number_text,
        ),
        min_size=1,
        max_size=90,
    )
)
def test_a_csv_chunk_encodes_as_csv_reader_rows_do(rows):
    """CSV text cut at commas by numpy, then Encoder.encode == csv.reader + Encoder.values, in both
    layouts (v2's numeric tensor in another column order than the inputs)."""
    for features in (FEATURES, V2_FEATURES):
        csv_chunk_encodes_as_rows(Encoder(features), rows)


def csv_chunk_encodes_as_rows(encoder: Encoder, rows: list[tuple[str, str, str, str]]) -> None:
    header = ["c", "a", "s", "b"]
    text = "".join(",".join([c, a, s, b]) + "\n" for a, s, b, c in rows)
    lines = io.BytesIO(text.encode()).readlines()
    cells = csv_cells(b"".join(lines), len(lines), header, (1, 2), csv.field_size_limit())
    if cells is None:  # something csv.reader must judge: a quote, a blank line, a stray comma...
        return
    read = list(csv.reader(io.StringIO(text), strict=True))
    assert [cells.record(i) for i in range(len(cells))] == [dict(zip(header, r, strict=True)) for r in read]
    records = [dict(zip(header, r, strict=True)) for r in read]
    try:
        expected = by_rows(encoder, records)
    except InvalidRecord as invalid:
        with pytest.raises(InvalidRecord) as error:
            encoder.encode(cells)
        assert (error.value.row, error.value.column, error.value.reason) == (
            invalid.row,
            invalid.column,
            invalid.reason,
        )
        return
    assert same_feeds(encoder.encode(cells), expected)


def test_lines_csv_reader_must_judge_are_left_to_it():
    header = ["a", "b"]
    limit = csv.field_size_limit()
    for text in ['1,"2"\n', "1,2\n\n3,4\n", "1,2\r3,4\n", "1\x00,2\n", "1,2,3\n", "1\n2,3,4\n"]:
        lines = io.BytesIO(text.encode()).readlines()
        assert csv_cells(b"".join(lines), len(lines), header, (1, 2), limit) is None, text
    ok = csv_cells(b"1,2\r\n3,4", 2, header, (1, 2), limit)
    assert ok is not None and [ok.record(i) for i in range(2)] == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert list(ok.rows) == [1, 2] and list(ok.lines) == [2, 3]


def faulty_csv(served: Path, path: Path) -> Path:
    """The bundled test rows with what csv.reader or the rule must judge spread over the file:
    a refused number, a ragged row, a quoted cell, blank lines, a CRLF line, a NaN token."""
    lines = (served / "test.csv").read_bytes().splitlines(keepends=True)[:400]
    header = lines[0].decode().rstrip("\n").split(",")
    cells = lines[150].split(b",")
    cells[header.index("total_day_minutes")] = b"1e999"  # a refused number
    lines[150] = b",".join(cells)
    lines[200] = lines[200].rstrip(b"\n") + b",extra\n"
    lines[260] = b'"' + lines[260].replace(b",", b'",', 1)  # a quoted cell: read alike
    lines[300:300] = [b"\n", b"\r\n"]
    lines[320] = lines[320].rstrip(b"\n") + b"\r\n"
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.parametrize("skip", [True, False])
def test_a_file_scores_alike_in_chunks_and_through_csv_reader(served, tmp_path, monkeypatch, skip):
    """score_file with numpy-cut chunks == score_file with csv.reader alone: the same scores, the
    same skipped rows and summary, or the same error."""
    source = faulty_csv(served, tmp_path / "in.csv")
    scorer = Scorer(served)

    def score(name: str):
        options = FileOptions(batch_size=64, skip_invalid=skip, summary_path=tmp_path / f"{name}.json")
        try:
            score_file(scorer, source, tmp_path / f"{name}.csv", options)
        except UserError as error:
            return str(error)
        summary = json.loads((tmp_path / f"{name}.json").read_text())
        return (tmp_path / f"{name}.csv").read_bytes(), {k: v for k, v in summary.items() if k != "output"}

    fast = score("fast")
    monkeypatch.setattr(chunks, "MIN_CELLS", 10**12)  # every chunk through csv.reader
    assert score("reader") == fast
    if skip:
        assert [i["row"] for i in fast[1]["invalid"]] == [150, 200]
    else:
        assert "row 150 (line 151), column" in fast and "is infinite or beyond the float32 range" in fast


def lf_lines(text: bytes) -> list[bytes]:
    """``text``'s lines, each with its LF (the last perhaps without): a line ends at LF only."""
    *ended, last = text.split(b"\n")
    return [line + b"\n" for line in ended] + ([last] if last else [])


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    st.booleans(),
    st.integers(1, 16),
    st.lists(st.integers(0, 7), min_size=1, max_size=20),
)
def test_a_line_buffer_takes_the_lines_the_file_has(lines, last_newline, block, takes):
    """LineBuffer.lines(k) / line() == the file's lines (LF-ended, the last perhaps not), in order,
    whatever the block size: a line or a count split across reads."""
    text = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    expected = lf_lines(text)
    counter = chunks.ByteCounter()
    buffer = chunks.LineBuffer(io.BytesIO(text), counter, block=block)
    got: list[bytes] = []
    for count in takes:
        if count:
            blob, found = buffer.lines(count)
            assert found == min(count, len(expected) - len(got))
            pieces = lf_lines(blob)
            assert len(pieces) == found
            got.extend(pieces)
        else:
            line = buffer.line()
            assert (line is None) == (len(got) == len(expected))
            got.extend([line] if line is not None else [])
    while (line := buffer.line()) is not None:
        got.append(line)
    assert got == expected and counter.bytes == len(text)


@pytest.mark.parametrize("features", [FEATURES, V2_FEATURES], ids=["v1", "v2"])
def test_a_chunk_reads_alike_in_small_blocks(features, monkeypatch):
    """Small blocks (many per chunk) give csv.reader + the per-cell rule's feeds bit for bit: no
    block boundary changes a value or an undecided cell's place."""
    rng = np.random.default_rng(7)
    pool = ["0", "1", "", "-", "12.5", "-3.25", "+.5", "7.", "1e3", "NaN", "0.000001", "-0", "99999999"]
    header = ["c", "a", "s", "b"]
    rows = [
        [str(rng.choice(pool)), str(rng.choice(pool)), f"k{i % 5}", str(rng.choice(pool))] for i in range(300)
    ]
    text = "".join(",".join(row) + "\n" for row in rows)
    cells = csv_cells(text.encode(), len(rows), header, (1, 2), csv.field_size_limit())
    assert cells is not None
    expected = by_rows(Encoder(features), [dict(zip(header, row, strict=True)) for row in rows])
    monkeypatch.setattr(columns, "BLOCK", 12)  # 3 rows per block: 100 blocks
    assert same_feeds(Encoder(features).encode(cells), expected)


def chunk_sizes(path: Path, limit: int) -> list[int]:
    """The number of rows each ``CsvChunks.chunk(limit)`` gives until the file ends."""
    with open(path, "rb") as handle:
        reader = chunks.CsvChunks(handle, path, chunks.ByteCounter(), [], None)
        sizes = []
        while (chunk := reader.chunk(limit)) is not None:
            sizes.append(len(chunk))
    return sizes


def test_a_chunk_never_holds_more_rows_than_asked(tmp_path):
    """Lines split at lone CRs do not make a chunk longer than the batch (they wait for the next);
    a file of only a header, or of exactly one batch, ends without a huge read."""
    mixed = tmp_path / "mixed.csv"
    rows = [f"{i},{i % 7}" + ("\r" if i % 3 == 0 else "\n") for i in range(1299)]
    mixed.write_text("a,b\n" + "".join(rows))
    assert chunk_sizes(mixed, 600) == [600, 600, 99]
    assert [record["a"] for record in read_csv_records(mixed, 600)] == [str(i) for i in range(600)]
    header_only, one_batch = tmp_path / "header.csv", tmp_path / "one.csv"
    header_only.write_text("a,b\n")
    one_batch.write_text("a,b\n" + "".join(f"{i},1\n" for i in range(1024)))
    assert chunk_sizes(header_only, 100_000) == []
    assert chunk_sizes(one_batch, 1024) == [1024]


@pytest.mark.parametrize("tokens", [["", "-999999999"], ["", "0", "-999"], ["-1234567890.12345"]])
def test_a_missing_token_that_looks_like_a_number_is_missing(tokens):
    """A contract may list numeric missing tokens; the column path then reads them as the rule
    does (missing), in a CSV chunk and in records, never as the number they look like."""
    features = {**FEATURES, "encoding": {**spec.ENCODING, "numeric": {**spec.ENCODING["numeric"]}}}
    features["encoding"]["numeric"]["missing_tokens"] = tokens
    encoder = Encoder(features)
    header = ["c", "a", "s", "b"]
    rows = [[tokens[-1], "1.5", "x", tokens[-1]], ["2", tokens[-1], "y", "7"]] * 40
    text = "".join(",".join(row) + "\n" for row in rows)
    cells = csv_cells(text.encode(), len(rows), header, (1, 2), csv.field_size_limit())
    records = [dict(zip(header, row, strict=True)) for row in rows]
    expected = by_rows(encoder, records)
    assert np.isnan(expected["a"][1::2]).all()
    assert same_feeds(encoder.encode(cells), expected)
    assert same_feeds(encoder.encode(records), expected)
