"""The zoo of user pipelines (tests/user_pipelines.py) on the bundled data: each supported one is
fitted, exported the export stage's way and scored on EVERY bundled row (plus probe rows with
missing values, unseen levels and zeros) by ONNX Runtime through the contract's encoder; each
refused one fails with one line naming its step, before training and at export.

Run with ``-s`` to see the measured max |p_sklearn - p_onnx| per pipeline (docs/models.md quotes it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from onnxship.contract import spec
from onnxship.contract.encode import Encoder
from onnxship.contract.runtime import session
from onnxship.convert import export, graph, packing, support
from onnxship.core.errors import UserError
from onnxship.train import data, training
from tests import user_pipelines
from tests.conftest import CHURN_PARAMS, churn_raw, churn_xy

MAX_DIFF = 1e-4


@pytest.fixture(autouse=True)
def one_thread():
    """OpenMP boosting on a shared 2-core machine is faster on one thread than contending for two."""
    with threadpool_limits(1):
        yield


def probe_rows(raw: pd.DataFrame, roles) -> pd.DataFrame:
    """Rows a client may send that the bundled file lacks: a missing and an unseen level in every
    categorical column, missing numbers, zeros (log of 0), far-out values."""
    base = raw.iloc[:12].copy()
    for k, name in enumerate(roles.categorical):
        base.iloc[k % 12, base.columns.get_loc(name)] = ""
        base.iloc[(k + 4) % 12, base.columns.get_loc(name)] = "never_seen"
    for k, name in enumerate(roles.numeric):
        base.iloc[k % 12, base.columns.get_loc(name)] = ["", "0", "99999"][k % 3]
    return base


def scoring_frame():
    raw = churn_raw()
    _, _, roles = churn_xy()
    return pd.concat([raw, probe_rows(raw, roles)], ignore_index=True), roles


def features(model, roles) -> dict:
    """The onnx_features.json fields the encoder reads (one input per CSV column, in order)."""
    inputs = []
    for graph_input, name in zip(model.graph.input, roles.features, strict=True):
        role = "numeric" if name in roles.numeric else "categorical"
        inputs.append({"name": name, "onnx_name": graph_input.name, "dtype": spec.ENCODING[role]["dtype"]})
    return {"encoding": spec.ENCODING, "inputs": inputs}


def fit(entry, roles):
    X, y, _ = churn_xy()
    pipeline = entry.factory(numeric=roles.numeric, categorical=roles.categorical)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(X.iloc[: entry.fit_rows], y[: entry.fit_rows])


@pytest.mark.parametrize("name", sorted(user_pipelines.SUPPORTED))
def test_user_pipeline_ships_with_no_flipped_decision(name):
    entry = user_pipelines.SUPPORTED[name]
    scored, roles = scoring_frame()
    support.check_convertible(entry.factory(numeric=roles.numeric, categorical=roles.categorical), name)
    pipeline = fit(entry, roles)
    model = export.convert(pipeline, roles, target_opset=17)
    X = data.features(scored, roles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unseen levels, on purpose
        reference = pipeline.predict_proba(X)[:, 1]
    feeds = Encoder(features(model, roles)).encode(scored.to_dict("records"))
    onnx_p = session(model.SerializeToString()).run([spec.PROBABILITY_OUTPUT], feeds)[0][:, 1]
    # Contract v2 (packed inputs) computes the very same bits on every pipeline of the zoo.
    packed = packing.pack_inputs(graph.copy_model(model), packing.layout(roles.numeric, roles.categorical))
    packed_features = export.feature_schema(packed, roles, pipeline, {c: [] for c in roles.categorical}, 2)
    packed_feeds = Encoder(packed_features).encode(scored.to_dict("records"))
    packed_p = session(packed.SerializeToString()).run([spec.PROBABILITY_OUTPUT], packed_feeds)[0][:, 1]
    assert packed_p.tobytes() == onnx_p.tobytes()
    y_fit = data.target(churn_raw(), CHURN_PARAMS)[: entry.fit_rows]
    tuned, _ = training.tune_threshold(y_fit, reference[: entry.fit_rows], "f1")
    diff = np.abs(reference - onnx_p.astype(np.float64))
    flips = {t: int(((reference >= t) != (onnx_p >= t)).sum()) for t in (0.5, tuned)}
    print(f"\nzoo {name}: {len(reference)} rows, max diff {diff.max():.2g}, flips {flips}")
    assert diff.max() <= MAX_DIFF
    assert flips == {0.5: 0, tuned: 0}


@pytest.mark.parametrize("name", sorted(user_pipelines.UNSUPPORTED))
def test_unsupported_user_pipeline_is_refused_naming_its_step(name):
    entry = user_pipelines.UNSUPPORTED[name]
    _, roles = scoring_frame()
    unfitted = entry.factory(numeric=roles.numeric, categorical=roles.categorical)
    with pytest.raises(UserError) as before:
        support.check_convertible(unfitted, name)
    with pytest.raises(UserError) as at_export:
        export.convert(fit(entry, roles), roles, target_opset=17)
    for message in (str(before.value), str(at_export.value)):
        assert f"step '{entry.step}'" in message and "\n" not in message
        assert "docs/data.md" in message and entry.way_out in message
    assert str(before.value).startswith(f"train.candidates '{name}': step '{entry.step}'")
