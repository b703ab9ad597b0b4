"""The diagnosis's records serialize to exactly the keys, key order and JSON values that
parity_report.json has always held (the report is compared byte for byte across versions)."""

from __future__ import annotations

import math

from onnxship.core.files import json_bytes
from onnxship.verify.diagnose import Finding
from onnxship.verify.metadata_check import check_metadata


def test_a_step_finding_keeps_the_report_key_order():
    finding = Finding(
        "step", "preprocess/numeric", "swapped columns", "step preprocess/numeric differs: ...",
        columns=["a", "b"], max_abs_diff=0.5, pairs=[("a", "b")],
        restore=[{"feature": "(none restored)", "max_abs_diff": 0.5, "flipped": 3}], drivers=["b"],
    )  # fmt: skip
    assert list(finding.to_dict()) == [
        "kind", "step", "cause", "columns", "message", "max_abs_diff", "pairs", "restore", "drivers",
    ]  # fmt: skip


def test_a_node_finding_has_its_node_before_the_message_and_no_unset_fields():
    finding = Finding("int8", "int8 graph", "foreign node", "INT8 graph has ...", node="Add")
    assert finding.to_dict() == {
        "kind": "int8",
        "step": "int8 graph",
        "cause": "foreign node",
        "node": "Add",
        "message": "INT8 graph has ...",
    }
    assert list(Finding("contract", "onnx_metadata.json", "threshold", "m").to_dict()) == [
        "kind", "step", "cause", "message",
    ]  # fmt: skip


def test_a_max_diff_with_no_finite_difference_is_null_and_an_unmeasured_one_absent():
    measured = Finding("step", "s", "values", "m", columns=[], max_abs_diff=math.nan).to_dict()
    assert "max_abs_diff" in measured and measured["max_abs_diff"] is None
    json_bytes(measured)  # strict JSON: no NaN
    assert "max_abs_diff" not in Finding("step", "s", "values", "m", columns=[]).to_dict()


def test_the_metadata_check_names_the_column_positive_class_index_reads():
    metadata = {
        "threshold": 0.5,
        "class_order": ["no", "yes"],
        "positive_class_index": 0,
        "positive_label": "yes",
    }
    check = check_metadata(metadata, 0.448)
    assert check.threshold_differs and check.wrong_column and check.pointed == "no"
    right = check_metadata({**metadata, "threshold": 0.448, "positive_class_index": 1}, 0.448)
    assert not right.threshold_differs and not right.wrong_column
