"""--id-column / --keep (onnxship.serve.passthrough): the rules every scorer follows, on records built
inline. The Python scorer and the Node client are compared on real files by tests/corpus (keep-*,
id-column-*); Spark's job on real data by tests/test_spark.py (e2e)."""

from __future__ import annotations

import json

import pytest

from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError
from onnxship.serve.passthrough import JsonRecord, Passthrough, keep_list, member_texts
from onnxship.serve.spark import cli as spark_cli


def json_record(text: str) -> JsonRecord:
    record = JsonRecord(json.loads(text))
    record.text = text
    return record


def test_keep_list_splits_on_commas_and_drops_spaces_and_empty_names():
    assert keep_list(" a, b ,,c ,") == ("a", "b", "c")
    assert keep_list(None) == () and keep_list("") == () and keep_list(" , ") == ()


def test_fields_put_the_id_first_and_each_name_once():
    assert Passthrough("id", ("a", "id", "b", "a")).fields == ("id", "a", "b")
    assert Passthrough(None, ("a",)).fields == ("a",)
    assert Passthrough().fields == ()


@pytest.mark.parametrize("name", ["row", "probability", "decision", "label"])
def test_a_name_the_output_uses_is_refused(name):
    with pytest.raises(UserError, match=f"column '{name}' would clash with the output's {name}"):
        Passthrough(None, (name,))


def test_a_csv_header_without_a_field_is_refused_naming_the_choices():
    with pytest.raises(UserError, match=r"in.csv has no column 'x' to keep: choose among \['a', 'b'\]"):
        Passthrough("a", ("x",)).check_header("in.csv", ["b", "a"])
    Passthrough("a", ("b",)).check_header("in.csv", ["b", "a"])


def test_csv_cells_are_copied_verbatim():
    record = {"id": " 007 ", "a": "1.50", "b": ""}
    assert Passthrough("id", ("a", "b")).values(record, 1) == [" 007 ", "1.50", ""]


def test_json_values_are_copied_as_text_numbers_as_written():
    text = '{"id": 12345678901234567890, "a": 1.50, "b": -1E-5, "c": true, "d": null, "e": "x\\"y"}'
    kept = Passthrough("id", ("a", "b", "c", "d", "e")).values(json_record(text), 1)
    assert kept == ["12345678901234567890", "1.50", "-1E-5", "true", "", 'x"y']


def test_a_missing_field_an_empty_id_and_an_object_are_invalid_rows():
    with pytest.raises(InvalidRecord, match=r"row 3 \(line 4\), column 'note': the field is missing"):
        Passthrough(None, ("note",)).values({"a": "1"}, 3, 4)
    with pytest.raises(InvalidRecord, match=r"row 2: the id column 'id' is empty: every row needs an id"):
        Passthrough("id").values({"id": ""}, 2)
    with pytest.raises(InvalidRecord, match="the id column 'id' is empty"):
        Passthrough("id").values(json_record('{"id": null}'), 2)
    with pytest.raises(InvalidRecord, match="column 'a': expected text, a number, true, false or null"):
        Passthrough(None, ("a",)).values(json_record('{"a": [1]}'), 1)


def test_member_texts_skips_nested_values_strings_and_spaces():
    text = ' { "a" : {"x": [1, "}", {"y": 2}]} , "b":"q,\\"}" ,"c" :  -0.0e+0 } '
    assert member_texts(text) == {"a": '{"x": [1, "}", {"y": 2}]}', "b": '"q,\\"}"', "c": "-0.0e+0"}
    assert member_texts("{}") == {}


def test_spark_reads_the_same_options_into_the_same_columns():
    """Spark copies [id, *keep] once each (its scored_frame), from --keep parsed by keep_list."""
    argv = ["score", "--input", "i.csv", "--output", "o", "--id-column", "id", "--keep", " a, id,,b "]
    options = spark_cli.score_options(spark_cli._parser().parse_args(argv))
    assert (options.id_column, options.keep) == ("id", ["a", "id", "b"])
    spark_fields = tuple(dict.fromkeys([c for c in [options.id_column, *options.keep] if c]))
    assert spark_fields == Passthrough("id", keep_list(" a, id,,b ")).fields
    default = spark_cli.score_options(spark_cli._parser().parse_args(argv[:5]))
    assert default.keep is None  # Spark's default: every input column (the CLI's: none)
