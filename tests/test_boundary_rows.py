"""Boundary rows (onnxship.convert.boundary_rows): the parity gate's rows next to tree split thresholds."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from onnxship.contract.artifacts import Contract
from onnxship.convert import export, thresholds
from onnxship.convert.boundary_rows import boundary_rows, sample, straddle
from onnxship.convert.tree_nodes import input_columns
from onnxship.core.files import json_bytes
from onnxship.core.params import ParityParams
from onnxship.train.table import Roles, features
from onnxship.verify import parity
from tests.conftest import churn_raw, churn_xy, fitted


def test_straddle_gives_the_two_float32_values_around_the_boundary():
    below, above = straddle(17.69999981, "<=")
    assert below == ("below", np.float32(17.699999)) and above == ("above", np.float32(17.7))
    assert float(below[1]) <= 17.69999981 < float(above[1])
    # x < t: the smallest float32 >= t is already on the right side.
    low, high = straddle(0.5, "<")
    assert float(low[1]) < 0.5 == float(high[1])
    assert straddle(np.inf, "<=") == []  # HistGradientBoosting's split of missing values from the rest


def test_sample_covers_every_column_before_a_second_threshold_and_is_deterministic():
    keys = [("a", "<=", float(t)) for t in range(10)] + [("b", "<=", 1.0), ("c", "<=", 2.0)]
    chosen = sample(keys, ["c", "b", "a"], 4)
    assert len(chosen) == 4 and {k[0] for k in chosen} == {"a", "b", "c"}
    assert chosen == sample(keys, ["c", "b", "a"], 4)
    assert sample(keys, ["a", "b", "c"], 100) == keys


def test_input_columns_trace_only_identity_steps():
    frame = pd.DataFrame({"n": [1.0, 2.0, np.nan, 4.0], "s": [0.5, 0.1, 0.2, 0.3], "k": [1.0, 2.0, 3.0, 4.0]})
    roles = Roles(numeric=["n", "s", "k"], categorical=[])
    pre = ColumnTransformer(
        [
            ("imputed", Pipeline([("impute", SimpleImputer(strategy="median"))]), ["n"]),
            ("scaled", StandardScaler(), ["s"]),
        ],
        remainder="passthrough",
    )
    pipeline = Pipeline([("preprocess", pre), ("model", DecisionTreeClassifier())]).fit(frame, [0, 1, 0, 1])
    assert input_columns(pipeline, roles) == ["n", None, "k"]


def test_boundary_rows_reach_their_split_and_label_it():
    _, _, roles = churn_xy()
    pipeline = fitted("hist_gradient_boosting")
    raw = churn_raw().iloc[2000:2300].reset_index(drop=True)
    found = boundary_rows(pipeline, raw, roles, max_rows=60)
    assert len(found.rows) == 60 == len(found.cases) and found.summary["scored"] == 30
    assert found.summary["untraced_inputs"] == len(roles.categorical)
    assert found.summary["splits"] >= found.summary["reached"] >= 30
    assert found.cases[0].startswith("boundary: ") and found.cases[0].endswith("(below)")
    assert found.cases[1].endswith("(above)")
    # The two rows of a split differ in that column only, by one float32 step.
    first, second = found.rows.iloc[0], found.rows.iloc[1]
    changed = [c for c in raw.columns if first[c] != second[c]]
    assert len(changed) == 1 and changed[0] in roles.numeric
    a, b = np.float32(first[changed[0]]), np.float32(second[changed[0]])
    assert np.nextafter(a, np.float32(np.inf)) == b
    assert boundary_rows(pipeline, raw, roles, max_rows=0).rows.empty
    assert boundary_rows(fitted("logistic_regression"), raw, roles, 60).summary == {"trees": 0}


def gate_report(pipeline, roles, raw: pd.DataFrame, aligned: bool, monkeypatch) -> dict:
    """Export ``pipeline`` (with or without exact thresholds) and run the gate on ``raw`` plus its
    boundary rows."""
    with monkeypatch.context() as patched:
        if not aligned:
            patched.setattr(thresholds, "align", lambda estimator: thresholds.Aligned(estimator, 0, 0))
        model = export.convert(pipeline, roles, 17)
    features_doc = export.feature_schema(model, roles, pipeline)
    lineage = {"target": {"negative_label": "no", "positive_label": "yes"}, "model_sha256": "", "chosen": {}}
    lineage["chosen"]["family"] = "x"
    model_bytes = model.SerializeToString()
    metadata = export.metadata(model, model_bytes, pipeline, lineage, 0.5, json_bytes(features_doc))
    contract = Contract(features_doc, metadata, model_bytes, "test")
    boundary = boundary_rows(pipeline, raw, roles, 2000)
    report, probabilities = parity.run_gate(
        parity.GateInput(
            pipeline=pipeline,
            threshold=0.5,
            roles=roles,
            rows=raw.to_dict("records") + boundary.rows.to_dict("records"),
            cases=[f"test row {i}" for i in range(len(raw))] + boundary.cases,
            n_test=len(raw),
            backends={"onnx": contract},
            params=ParityParams(diagnose="never"),
            n_boundary=len(boundary.rows),
            boundary=boundary.summary,
        )
    )
    diff = np.abs(probabilities["sklearn"] - probabilities["onnx"])[len(raw) :]
    report["differing_cases"] = [case for case, d in zip(boundary.cases, diff, strict=True) if d > 1e-4]
    return report


@pytest.fixture(scope="module")
def adversarial():
    """The churn data with one numeric column made of adjacent float32 pairs, the lower one for
    staying customers and the upper one for churned ones: with fewer distinct values than bins,
    HistGradientBoosting's thresholds are the float64 midpoints, which float32 cannot hold."""
    raw = churn_raw().iloc[:1500].reset_index(drop=True)
    rng = np.random.default_rng(3)
    low = rng.integers(1, 120, len(raw)).astype(np.float32) + np.float32(0.3)  # < 255 distinct values
    high = np.nextafter(low, np.float32(np.inf))
    churned = raw["churn"] == "yes"
    raw["total_day_minutes"] = [repr(float(v)) for v in np.where(churned, high, low)]
    _, _, roles = churn_xy()
    from onnxship.train import models
    from tests.conftest import small_train_params

    train, test = raw.iloc[:1000], raw.iloc[1000:].reset_index(drop=True)
    pipeline = models.build_pipeline("hist_gradient_boosting", roles, small_train_params())
    pipeline.fit(features(train, roles), (train["churn"] == "yes").astype(int))
    return pipeline, roles, test


def test_a_model_exported_without_exact_thresholds_fails_the_gate_through_its_boundary_rows(
    adversarial, monkeypatch
):
    pipeline, roles, test = adversarial
    report = gate_report(pipeline, roles, test, aligned=False, monkeypatch=monkeypatch)
    onnx = report["backends"]["onnx"]
    assert not report["passed"]
    assert onnx["test_rows"]["max_abs_diff"] <= 1e-4  # the held-out rows alone would have passed
    assert onnx["boundary_rows"]["max_abs_diff"] > 1e-4
    reason = next(r for r in onnx["reasons"] if "boundary rows differ" in r)
    assert "worst" in reason and " at 'boundary: " in reason
    failing = report["differing_cases"]
    assert any(case.startswith("boundary: total_day_minutes <= ") for case in failing), failing
    assert report["rows"]["boundary"] == onnx["boundary_rows"]["rows"] > 0
    # Exported as export does it, the same model passes, boundary rows included.
    fixed = gate_report(pipeline, roles, test, aligned=True, monkeypatch=monkeypatch)
    assert fixed["passed"], fixed["backends"]["onnx"]["reasons"]
    assert fixed["backends"]["onnx"]["boundary_rows"]["max_abs_diff"] <= 1e-6
    assert fixed["boundary"]["reached"] >= fixed["boundary"]["scored"] > 0
