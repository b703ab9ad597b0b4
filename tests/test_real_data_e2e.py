"""The whole pipeline on a generated table with the hard parts of real data: missing cells in every
feature, a ~4,000-level categorical, an ID column, ~5 % positives. Every stage script runs in this
process, in dvc.yaml's order (tests/conftest.py ``run_stages``): what is checked here is what the
stages make of such data; that `dvc repro` runs those very scripts is tests/test_staged.py's and
tests/test_pipeline_e2e.py's business. (tools/measure_scale.py runs the same through DVC at 10k and
100k rows, outside CI.)"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import REPO, run_stages
from tests.datagen import make_dataset
from tests.dvc_project import edit_params, fast, set_param

pytestmark = pytest.mark.e2e


def generated(params) -> None:
    fast(params)
    params["data"].update({"path": "data/generated.csv", "target": "status", "positive_label": "churned"})
    set_param(params, "train.max_categories", 50)
    # The cost knobs of large files, scaled down: a screen, then early stopping in every fit.
    set_param(params, "train.screen", {"rows": 1500, "keep": 1})
    set_param(params, "train.early_stopping_min_rows", 1000)
    set_param(params, "train.hist_gradient_boosting.n_iter_no_change", 3)


def test_pipeline_on_messy_imbalanced_high_cardinality_data(tmp_path):
    (tmp_path / "data").mkdir()
    make_dataset(4000, seed=3, levels=4000).to_csv(tmp_path / "data" / "generated.csv", index=False)
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    edit_params(tmp_path, generated)
    run_stages(tmp_path)  # every stage, each returning 0 (the gate passed)
    artifacts = tmp_path / "artifacts"
    lineage = json.loads((artifacts / "lineage.json").read_text())
    assert lineage["roles"]["id_like"] == ["customer_id"]
    assert "product" in lineage["roles"]["categorical"]
    assert lineage["roles"]["numeric"] == [
        "tenure_months",
        "monthly_spend",
        "support_calls",
        "rating",
        "score",
    ]
    assert 0.03 < lineage["target"]["positive_rate"] < 0.08
    screen = lineage["cv"]["screen"]
    assert screen["rows"] == 1500 and len(screen["candidates"]) == 2
    assert list(lineage["cv"]["candidates"]) == screen["kept"] and len(screen["kept"]) == 1
    if lineage["chosen"]["family"] == "hist_gradient_boosting":
        assert lineage["chosen"]["resolved"]["early_stopping"] is True
        assert lineage["chosen"]["hyperparameters"]["early_stopping"] is True
    features = json.loads((artifacts / "onnx_features.json").read_text())
    product = next(i for i in features["inputs"] if i["name"] == "product")
    assert len(product["categories"]) <= 52  # 50 kept + "__other__" + "__missing__"
    assert "customer_id" not in {i["name"] for i in features["inputs"]}
    report = json.loads((artifacts / "parity_report.json").read_text())
    assert report["passed"], report["backends"]["onnx"]["reasons"]
    # Edge rows cover a missing value in every column and unseen levels; FP32 agrees on all of them.
    assert report["rows"]["edge"] >= 2 * 9
    assert report["backends"]["onnx"]["edge_rows"]["agreement"] == 1.0
    assert (artifacts / "model.onnx").stat().st_size < 200_000  # capped one-hot keeps the export small
