"""LightGBM and XGBoost: fitted as our families and as the last step of a user's pipeline, converted by
onnxmltools' converters through skl2onnx, and scored the same by the library and ONNX Runtime on
every bundled row, on edge rows and on rows placed on either side of every split threshold."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from onnxship.contract.runtime import session
from onnxship.contract.spec import PROBABILITY_OUTPUT
from onnxship.convert import boosters, converters, export
from onnxship.core.errors import UserError
from onnxship.train import boosters as train_boosters
from onnxship.train import lineage, models, sizes
from onnxship.verify.benchmark import reference
from tests.conftest import churn_raw, churn_xy, fitted, small_train_params
from tests.test_transformers import gate

FAMILIES = ["lightgbm", "xgboost"]
THRESHOLDS = {"lightgbm": boosters.lightgbm_thresholds, "xgboost": boosters.xgboost_thresholds}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_bundled_row_and_every_edge_row_passes_the_gate(family):
    # Fitted on the first 2,000 rows; all 5,000 scored one by one through the shipped scorer, plus the
    # gate's edge rows (unseen categories, missing and far-out numbers).
    _, _, roles = churn_xy()
    report = gate(fitted(family), churn_raw().drop(columns="churn"), roles)
    onnx_result = report["backends"]["onnx"]
    assert report["passed"], onnx_result["reasons"]
    print(family, "max diff on 5,000 rows", onnx_result["max_abs_diff"], "edge", onnx_result["edge_rows"])
    assert onnx_result["max_abs_diff"] <= 1e-6
    assert onnx_result["edge_rows"]["max_abs_diff"] <= 1e-6


def input_matrix(family: str) -> np.ndarray:
    """What the booster of ``fitted(family)`` sees for every bundled row, as float32."""
    X, _, _ = churn_xy()
    return fitted(family)[:-1].transform(X).astype(np.float32)


def bare_onnx(model, n_features: int) -> onnx.ModelProto:
    converters.register_builtin()
    return to_onnx(
        model,
        initial_types=[("X", FloatTensorType([None, n_features]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )


def score(model_proto: onnx.ModelProto, X: np.ndarray) -> np.ndarray:
    return session(model_proto.SerializeToString()).run([PROBABILITY_OUTPUT], {"X": X})[0][:, 1]


def straddling_rows(family: str) -> np.ndarray:
    """Bundled rows with one column set to the float32 just below, at, and just above (rounded to
    float32 nearest) each split threshold of that column: where a rounded threshold goes wrong."""
    X = input_matrix(family)
    base = X[:12]
    rows = []
    for column, values in THRESHOLDS[family](fitted(family)[-1]).items():
        for t in values:
            nearest = np.float32(t)
            for v in (
                np.nextafter(nearest, np.float32(-np.inf)),
                nearest,
                np.nextafter(nearest, np.float32(np.inf)),
            ):
                block = base.copy()
                block[:, column] = v
                rows.append(block)
    return np.concatenate(rows)


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_on_either_side_of_every_threshold_score_the_same(family):
    model = fitted(family)[-1]
    X = straddling_rows(family)
    library = model.predict_proba(X)[:, 1]
    converted = score(bare_onnx(model, X.shape[1]), X)
    print(family, len(X), "straddling rows, max diff", float(np.abs(library - converted).max()))
    assert np.abs(library - converted).max() <= 1e-6
    assert ((library >= 0.5) == (converted >= 0.5)).all()


def test_lightgbm_thresholds_rounded_to_nearest_would_send_rows_the_wrong_way():
    # Why lightgbm_aligned exists: many of LightGBM's float64 thresholds round up to the nearest
    # float32, and the model with thresholds rounded that way (what a plain conversion computes)
    # scores straddling rows differently from LightGBM.
    import lightgbm

    model = fitted("lightgbm")[-1]
    thresholds = np.concatenate(list(boosters.lightgbm_thresholds(model).values()))
    assert (thresholds.astype(np.float32).astype(np.float64) > thresholds).sum() > 10

    def nearest(match):
        pairs = zip(match["thresholds"].split(), match["types"].split(), strict=True)
        rounded = [t if int(kind) & 1 else repr(float(np.float32(float(t)))) for t, kind in pairs]
        return f"threshold={' '.join(rounded)}\ndecision_type={match['types']}"

    text = boosters.TREE_SIZES.sub("", model.booster_.model_to_string(), count=1)
    naive = lightgbm.Booster(model_str=boosters.SPLITS.sub(nearest, text))
    X = straddling_rows("lightgbm")
    moved = np.abs(naive.predict(X) - model.booster_.predict(X))
    print("rounded to nearest:", int((moved > 1e-6).sum()), "of", len(X), "rows move, by up to", moved.max())
    assert (moved > 1e-6).sum() > 0


def test_lightgbm_aligned_predicts_exactly_what_lightgbm_predicts():
    model = fitted("lightgbm")[-1]
    aligned = boosters.lightgbm_aligned(model)
    X = np.concatenate(
        [straddling_rows("lightgbm"), np.full((1, input_matrix("lightgbm").shape[1]), np.nan, "f4")]
    )
    np.testing.assert_array_equal(aligned.predict_proba(X), model.predict_proba(X))
    aligned_values = np.concatenate(list(boosters.lightgbm_thresholds(aligned).values()))
    assert (aligned_values.astype(np.float32).astype(np.float64) == aligned_values).all()
    assert (
        boosters.lightgbm_thresholds(boosters.lightgbm_aligned(aligned)).keys()
        == boosters.lightgbm_thresholds(model).keys()
    )


def test_split_triples_list_every_threshold_with_its_comparison():
    for family, op in (("lightgbm", "<="), ("xgboost", "<")):
        model = fitted(family)[-1]
        triples = getattr(boosters, f"{family}_splits")(model)
        expected = {(f, float(t)) for f, ts in THRESHOLDS[family](model).items() for t in ts}
        assert {(f, t) for f, t, _ in triples} == expected and {o for _, _, o in triples} == {op}


def test_xgboost_converts_its_float32_thresholds_exactly_with_x_less_than_t():
    model = fitted("xgboost")[-1]
    assert boosters.xgboost_aligned(model) is model
    tree = next(
        n
        for n in bare_onnx(model, input_matrix("xgboost").shape[1]).graph.node
        if "TreeEnsemble" in n.op_type
    )
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in tree.attribute}
    splits = [i for i, mode in enumerate(attrs["nodes_modes"]) if mode != b"LEAF"]
    assert {attrs["nodes_modes"][i] for i in splits} == {b"BRANCH_LT"}
    written = {(attrs["nodes_featureids"][i], np.float32(attrs["nodes_values"][i])) for i in splits}
    expected = {(f, np.float32(t)) for f, ts in boosters.xgboost_thresholds(model).items() for t in ts}
    assert written == expected  # every threshold, bit for bit


def test_missing_values_follow_the_library_through_a_user_pipeline():
    # A user's pipeline: numbers passed through with their NaN (no imputer), one-hot categories,
    # then the booster. NaN takes each split's learned side in both runtimes, also for a column
    # that had no NaN in training (LightGBM reads NaN as 0 there).
    X, y, roles = churn_xy()
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    for family in FAMILIES:
        pre = ColumnTransformer(
            [
                ("numeric", "passthrough", roles.numeric),
                ("categorical", Pipeline([("encode", onehot)]), roles.categorical),
            ]
        )
        params = small_train_params(**{family: {"n_estimators": 60}})
        pipeline = Pipeline([("preprocess", pre), ("model", models.estimator(family, params))])
        pipeline.fit(X[:2000], y[:2000])
        report = gate(pipeline, churn_raw().drop(columns="churn").iloc[:1500], roles)
        assert report["passed"], (family, report["backends"]["onnx"]["reasons"])
        assert report["backends"]["onnx"]["max_abs_diff"] <= 1e-6, family


@pytest.mark.parametrize("family", FAMILIES)
def test_nan_takes_the_library_side_with_and_without_nan_in_training(family):
    # Column 1 has NaN in training (LightGBM: missing type NaN, a learned side); the others have
    # none (LightGBM reads NaN as 0 there: left or right by the threshold's sign; values straddle 0).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4)).astype(np.float32)
    X[rng.random(3000) < 0.2, 1] = np.nan
    signal = X[:, 0] + np.nan_to_num(X[:, 1], nan=1.0) - 0.5 * X[:, 2] + 0.5 * rng.normal(size=3000)
    model = models.estimator(family, small_train_params(**{family: {"n_estimators": 50}}))
    model.fit(X, (signal > 0).astype(int))
    blocks = [X[:300]]
    for column in range(4):
        block = X[:300].copy()
        block[:, column] = np.nan
        blocks.append(block)
    rows = np.concatenate([*blocks, np.full((1, 4), np.nan, np.float32)])
    library, converted = model.predict_proba(rows)[:, 1], score(bare_onnx(model, 4), rows)
    assert np.abs(library - converted).max() <= 1e-6
    assert ((library >= 0.5) == (converted >= 0.5)).all()


@pytest.mark.parametrize("setting", ["zero_as_missing", "linear_tree"])
def test_lightgbm_settings_onnx_cannot_express_are_refused_with_one_line(setting):
    X, y, roles = churn_xy()
    pipeline = models.build_pipeline("lightgbm", roles, small_train_params())
    pipeline.set_params(**{f"model__{setting}": True, "model__n_estimators": 5}).fit(X[:1000], y[:1000])
    with pytest.raises(UserError, match=setting) as info:
        export.convert(pipeline, roles, 17)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_fitting_twice_gives_byte_identical_model_and_onnx(family):
    X, y, roles = churn_xy()
    pickles, graphs = set(), set()
    for _ in range(2):
        pipeline = models.build_pipeline(family, roles, small_train_params()).fit(X[:1500], y[:1500])
        pickles.add(lineage.joblib_bytes(models.machine_independent(pipeline)))
        graphs.add(export.convert(pipeline, roles, 17).SerializeToString())
    assert len(pickles) == 1 and len(graphs) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_cost_is_the_tree_nodes_onnx_evaluates(family):
    pipeline = fitted(family)
    onnx_model = export.convert(pipeline, churn_xy()[2], 17)
    tree = next(n for n in onnx_model.graph.node if "TreeEnsemble" in n.op_type)
    node_ids = next(a for a in tree.attribute if a.name == "nodes_nodeids")
    assert sizes.model_cost(pipeline) == len(node_ids.ints)


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_threads_follow_the_benchmark_and_its_reference_names_the_library(family):
    model = export.clone_fitted(fitted(family))[-1]
    assert model.get_params()["n_jobs"] == 1  # trained single-threaded
    X = input_matrix(family)[:200]
    before = model.predict_proba(X)
    assert train_boosters.set_predict_threads(model, 2) and model.get_params()["n_jobs"] == 2
    if family == "xgboost":
        config = model.get_booster().save_config()
        assert '"nthread":"2"' in config.replace(" ", "")
    np.testing.assert_array_equal(model.predict_proba(X), before)
    assert not train_boosters.set_predict_threads(fitted("random_forest")[-1], 2)
    assert reference(family)["library"] == family and reference(family)["version"] != "not installed"
    assert reference("random_forest")["library"] == "scikit-learn"


def test_a_family_whose_library_is_missing_is_refused(monkeypatch):
    monkeypatch.setitem(train_boosters.PACKAGES, "nosuchboost", "nosuchboost")
    with pytest.raises(UserError, match="pip install nosuchboost"):
        train_boosters.library("nosuchboost")


@pytest.mark.parametrize("family", FAMILIES)
def test_the_tree_count_scan_scores_exactly_the_smaller_model_the_refit_ships(family):
    # One fit per fold scores every count; a fit with n_estimators = count gives the same trees.
    X, y, roles = churn_xy()
    params = small_train_params(cv_folds=2, **{family: {"n_estimators": 40}})
    pipeline = models.build_pipeline(family, roles, params)
    candidates, oof = sizes.tree_count_candidates(pipeline, X.iloc[:1200], y[:1200], [10, 40], params)
    assert [c.name for c in candidates] == ["10 trees", "40 trees"]
    assert candidates[0].cost < candidates[1].cost
    small = models.build_pipeline(family, roles, params).set_params(model__n_estimators=10)
    scored = _fold_rows(y, params)
    fit_rows = np.setdiff1d(np.arange(1200), scored)
    small.fit(X.iloc[fit_rows], y[fit_rows])
    expected = small.predict_proba(X.iloc[scored])[:, 1]
    np.testing.assert_allclose(oof["10 trees"][scored], expected, rtol=0, atol=1e-12)


def _fold_rows(y, params) -> np.ndarray:
    """The rows the first CV fold scores, among the first 1,200."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=params.seed)
    return next(folds.split(np.zeros(1200), y[:1200]))[1]


@pytest.mark.e2e
def test_the_stages_ship_lightgbm_and_xgboost_end_to_end(tmp_path):
    # Every stage script, in this process, on the bundled data with both boosters as the candidates
    # (benchmark at 1 and 2 threads: the library's predict follows each count).
    import shutil

    from tests.conftest import REPO, run_stages
    from tests.dvc_project import edit_params, fast, set_param

    def boosters_only(params) -> None:
        fast(params)
        set_param(params, "train.candidates", FAMILIES)
        set_param(params, "benchmark.threads", [1, 2])

    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "data", tmp_path / "data")
    edit_params(tmp_path, boosters_only)
    run_stages(tmp_path)
    artifacts = tmp_path / "artifacts"
    trained = json.loads((artifacts / "lineage.json").read_text())
    family = trained["chosen"]["family"]
    assert family in FAMILIES and set(trained["cv"]["candidates"]) == set(FAMILIES)
    assert train_boosters.PACKAGES[family] in trained["versions"]
    meta = json.loads((artifacts / "onnx_metadata.json").read_text())
    assert meta["family"] == family and "onnxmltools" in meta["versions"]
    parity = json.loads((artifacts / "parity_report.json").read_text())
    assert parity["passed"] and parity["backends"]["onnx"]["max_abs_diff"] <= 1e-6
    bench = json.loads((artifacts / "benchmark.json").read_text())
    assert bench["reference"]["library"] == family and bench["thread_mismatches"] == []
