"""ScoreSummary and the shared input messages: what both scoring CLIs (files and Spark) print and
write, worked by hand. No model, no Spark: milliseconds."""

from __future__ import annotations

import json

import pytest

from onnxship.core.errors import UserError
from onnxship.serve.summary import MAX_LISTED, ScoreSummary, require_columns, require_folder


def test_summary_json_keys_and_order_are_the_documented_ones(tmp_path):
    summary = ScoreSummary("rows.csv", "scores.csv", rows_read=3, rows_scored=3, positives=1)
    summary.write(tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert text == summary.to_json() and text.endswith("}\n")
    assert list(json.loads(text)) == [
        "input", "output", "rows_read", "rows_scored", "rows_skipped", "positives", "invalid"
    ]  # fmt: skip
    assert json.loads(text) == {
        "input": "rows.csv", "output": "scores.csv", "rows_read": 3, "rows_scored": 3,
        "rows_skipped": 0, "positives": 1, "invalid": [],
    }  # fmt: skip


def test_every_skipped_row_is_counted_and_the_first_twenty_are_listed():
    summary = ScoreSummary("in", "out")
    for row in range(1, 26):
        summary.rows_read += 1
        summary.add_skipped({"row": row, "column": None, "reason": "bad"})
    summary.add_scored(rows=4, positives=3)
    assert (summary.rows_skipped, summary.rows_scored, summary.positives) == (25, 4, 3)
    assert MAX_LISTED == 20 and [i["row"] for i in summary.invalid] == list(range(1, 21))


def test_lines_say_what_was_scored_and_name_the_first_three_skipped():
    summary = ScoreSummary("in", "out.csv", rows_read=1205, rows_scored=1201, positives=1034)
    assert summary.lines() == ["scored 1,201 rows (1,034 positive) -> out.csv"]
    for row, column in [(3, "state"), ("id=7", None), (9, "x"), (12, "y")]:
        summary.add_skipped({"row": row, "column": column, "reason": f"reason {row}"})
    assert summary.lines()[1] == (
        "skipped 4 invalid rows (first: row 3 column 'state': reason 3; row id=7: reason id=7; "
        "row 9 column 'x': reason 9)"
    )


def test_missing_columns_are_all_named_in_one_message():
    require_columns("rows.csv", {"a", "b"}, ["a", "b"])
    with pytest.raises(UserError) as caught:
        require_columns("rows.csv", {"a"}, ["a", "b", "c"])
    assert str(caught.value) == (
        "rows.csv has no column 'b', 'c': the model needs every input column (an empty cell means a "
        "missing value)"
    )


def test_an_output_in_a_missing_folder_is_refused(tmp_path):
    require_folder(tmp_path / "s.json")
    with pytest.raises(UserError, match=f"the folder of {tmp_path / 'no' / 's.json'} does not exist"):
        require_folder(tmp_path / "no" / "s.json")
    assert not (tmp_path / "no").exists()
