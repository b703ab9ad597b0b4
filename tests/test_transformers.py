"""Our own transformer and the custom-converter hook, exported and checked by the parity gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from onnxship.contract.artifacts import Contract
from onnxship.convert import export
from onnxship.core.errors import UserError
from onnxship.core.files import json_bytes
from onnxship.core.params import DataParams, ParityParams, load_params
from onnxship.train import data, models
from onnxship.train.transformers import OTHER_CATEGORY, RareCategoryGrouper
from onnxship.verify import parity
from tests.conftest import REPO, small_train_params
from tests.datagen import make_dataset


def test_grouper_keeps_frequent_levels_and_groups_the_rest():
    X = np.array([["a"], ["a"], ["b"], ["b"], ["c"], [""]], dtype=object)
    grouper = RareCategoryGrouper(max_categories=2, min_frequency=1).fit(X)
    assert grouper.kept_ == [["a", "b"]] and grouper.grouped_ == [2]
    out = grouper.transform(np.array([["a"], ["c"], ["never seen"], [""]], dtype=object))
    assert out[:, 0].tolist() == ["a", OTHER_CATEGORY, OTHER_CATEGORY, OTHER_CATEGORY]
    by_count = RareCategoryGrouper(max_categories=None, min_frequency=2).fit(X)
    assert by_count.kept_ == [["a", "b"]]


def test_grouper_without_rare_levels_passes_everything_through():
    X = np.array([["x"], ["y"]], dtype=object)
    grouper = RareCategoryGrouper(max_categories=10).fit(X)
    assert grouper.transform(np.array([["z"]], dtype=object))[0, 0] == "z"


def gate(pipeline, raw: pd.DataFrame, roles, converter_modules=()) -> dict:
    """Export ``pipeline`` and run the parity gate on ``raw`` plus its edge rows."""
    model = export.convert(pipeline, roles, 17, converter_modules=converter_modules)
    features = export.feature_schema(model, roles, pipeline)
    lineage = {
        "target": {"negative_label": "0", "positive_label": "1"},
        "model_sha256": "",
        "chosen": {"family": "x"},
    }
    metadata = export.metadata(model, model.SerializeToString(), pipeline, lineage, 0.5, json_bytes(features))
    edges, cases = parity.edge_rows(raw.iloc[0], features, raw)
    params = ParityParams.model_validate(load_params(REPO / "params.yaml").parity.model_dump())
    contract = Contract(features, metadata, model.SerializeToString(), "test")
    report, _ = parity.run_gate(
        parity.GateInput(
            pipeline=pipeline,
            threshold=0.5,
            roles=roles,
            rows=pd.concat([raw, edges], ignore_index=True).to_dict("records"),
            cases=[f"row {i}" for i in range(len(raw))] + cases,
            n_test=len(raw),
            backends={"onnx": contract, "int8": contract},
            params=params,
        )
    )
    return report


@pytest.mark.parametrize("family", ["logistic_regression", "hist_gradient_boosting"])
def test_high_cardinality_missing_values_and_unseen_levels_export_with_parity(family):
    frame = make_dataset(3000, seed=1).astype(str).replace("nan", "")
    params = DataParams(path="x.csv", target="status", positive_label="churned")
    roles = data.infer_roles(frame, params)
    assert roles.id_like == ["customer_id"] and "product" in roles.categorical
    train, test = frame.iloc[:2000], frame.iloc[2000:].reset_index(drop=True)
    pipeline = models.build_pipeline(family, roles, small_train_params(max_categories=50))
    pipeline.fit(data.features(train, roles), data.target(train, params))
    grouper = pipeline.named_steps["preprocess"].named_transformers_["categorical"].named_steps["group_rare"]
    assert len(grouper.kept_[roles.categorical.index("product")]) == 50
    report = gate(pipeline, test, roles)
    assert report["passed"], report["backends"]["onnx"]["reasons"]
    assert report["backends"]["onnx"]["max_abs_diff"] < 1e-5


def churn_like(rows: int = 1500) -> tuple[pd.DataFrame, DataParams]:
    frame = make_dataset(rows, seed=2).astype(str).replace("nan", "")
    return frame, DataParams(path="x.csv", target="status", positive_label="churned")


def test_worked_example_plugin_exports_and_passes_parity():
    frame, params = churn_like()
    roles = data.infer_roles(frame, params)
    train_params = small_train_params(numeric_transformer="plugins.clip:QuantileClipper")
    pipeline = models.build_pipeline("logistic_regression", roles, train_params)
    pipeline.fit(data.features(frame.iloc[:1000], roles), data.target(frame.iloc[:1000], params))
    assert "custom" in pipeline.named_steps["preprocess"].named_transformers_["numeric"].named_steps
    report = gate(
        pipeline, frame.iloc[1000:].reset_index(drop=True), roles, converter_modules=("plugins.clip",)
    )
    assert report["passed"], report["backends"]["onnx"]["reasons"]
    # Far-out edge values are clipped the same way by scikit-learn and by the ONNX graph.
    assert report["backends"]["onnx"]["edge_rows"]["max_abs_diff"] < 1e-5


def test_a_step_without_converter_is_named_with_the_hook():
    frame, params = churn_like()
    roles = data.infer_roles(frame, params)
    train_params = small_train_params(numeric_transformer="sklearn.preprocessing:SplineTransformer")
    pipeline = models.build_pipeline("logistic_regression", roles, train_params)
    pipeline.fit(data.features(frame, roles), data.target(frame, params))
    with pytest.raises(UserError) as info:
        export.convert(pipeline, roles, 17)
    message = str(info.value)
    assert "step 'preprocess/numeric/custom'" in message and "SplineTransformer" in message
    assert "export.converter_modules" in message


def test_bad_hook_names_are_clear():
    with pytest.raises(UserError, match="cannot be loaded"):
        models.custom_transformer("plugins.clip:NoSuchClass")
    with pytest.raises(UserError, match="cannot import 'no_such_module'"):
        from onnxship.convert import converters

        converters.register(["no_such_module"])


def test_a_column_with_no_level_frequent_enough_still_exports():
    frame, params = churn_like()
    roles = data.infer_roles(frame, params)
    pipeline = models.build_pipeline("logistic_regression", roles, small_train_params(min_frequency=100_000))
    pipeline.fit(data.features(frame.iloc[:1000], roles), data.target(frame.iloc[:1000], params))
    grouper = pipeline.named_steps["preprocess"].named_transformers_["categorical"].named_steps["group_rare"]
    assert grouper.kept_ == [[] for _ in roles.categorical]
    report = gate(pipeline, frame.iloc[1000:].reset_index(drop=True), roles)
    assert report["passed"], report["backends"]["onnx"]["reasons"]
