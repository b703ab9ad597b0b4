"""Models that are not ours: a candidate built by your own function (``module:function`` in
train.candidates) and a fitted classifier you already have (train.fitted_model).

Only what params name is run: a factory must be a plain Python function of an importable module
(``os:system``, a class or any other callable is refused before anything calls it), and a fitted
model is unpickled from the file params name (a joblib file is a pickle: load only your own).
Whatever they return must be a scikit-learn classifier with predict_proba.
"""

from __future__ import annotations

import importlib
import inspect
import math
from pathlib import Path

import numpy as np
from sklearn.base import is_classifier

from onnxship.core.errors import UserError
from onnxship.train.table import Roles

FIX = "give 'module:function' importable from the project root, e.g. plugins.my_models:build (docs/models.md)"


def is_factory(candidate: str) -> bool:
    """Whether a train.candidates entry names a factory of your own rather than a built-in family."""
    return ":" in candidate


def load_factory(spec: str):
    """The function ``spec`` ("module:function") names, imported but not called."""
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"train.candidates entry '{spec}' cannot be imported ({exc}): {FIX}") from None
    found = getattr(module, name, None)
    if not inspect.isfunction(found):
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise UserError(
            f"train.candidates entry '{spec}' names {what}, not a function defined in Python: {FIX}"
        )
    return found


def build(spec: str, roles: Roles):
    """A fresh, unfitted classifier from the factory ``spec``, given the column roles."""
    factory = load_factory(spec)
    try:
        model = factory(numeric=list(roles.numeric), categorical=list(roles.categorical))
    except Exception as exc:  # the user's code: any failure is theirs to fix, in one line
        raise UserError(
            f"train.candidates entry '{spec}' failed when called with numeric= and categorical= "
            f"({type(exc).__name__}: {exc}); it must accept both keyword arguments"
        ) from None
    check_classifier(model, f"train.candidates entry '{spec}' returned")
    return model


def check_classifier(model, what: str) -> None:
    """A UserError unless ``model`` is a scikit-learn classifier with predict_proba."""
    if not is_classifier(model) or not hasattr(model, "predict_proba"):
        raise UserError(
            f"{what} a {type(model).__module__}.{type(model).__name__}, not a scikit-learn classifier with "
            "predict_proba: return an unfitted classifier (or a Pipeline ending in one)"
        )


def load_fitted(path: str | Path):
    """The fitted classifier in the joblib file ``path``, checked: two classes, predict_proba."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise UserError(f"train.fitted_model {path} not found: put your joblib file there or fix the path")
    try:
        model = joblib.load(path)
    except Exception as exc:  # a pickle can fail in many ways; its reason is the useful part
        raise UserError(
            f"train.fitted_model {path} cannot be loaded ({type(exc).__name__}: {exc}); save it with "
            "joblib.dump, with the packages of requirements.txt, and make its classes importable"
        ) from None
    check_classifier(model, f"train.fitted_model {path} holds")
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise UserError(f"train.fitted_model {path} is not fitted (no classes_): fit it before joblib.dump")
    if len(classes) != 2:
        raise UserError(
            f"train.fitted_model {path} has {len(classes)} classes {list(classes)}; onnxship ships binary "
            "classifiers only"
        )
    return model


def positive_class(classes, positive_label: str | int, path: str):
    """The class of ``classes`` that means positive, as a JSON value: the positive label as trained
    (the raw "yes", or an int label), else 1 / True of a model trained on ``y == positive``."""
    values = [c.item() if isinstance(c, np.generic) else c for c in classes]
    for value in values:
        if not isinstance(value, bool) and str(value) == str(positive_label):
            return value
    if set(values) == {0, 1}:  # 0/1 ints or False/True: trained on y == positive
        return True if all(isinstance(v, bool) for v in values) else 1
    raise UserError(
        f"train.fitted_model {path} has classes {values}, none of them the positive label "
        f"{positive_label!r} nor 1/True: train it with the raw labels of data.target or with y == positive"
    )


def json_params(model) -> dict:
    """The estimator's parameters (``get_params(deep=True)``) as JSON values, for lineage.json: an
    estimator, class or function becomes its dotted name (never a repr with a memory address, so the
    file stays byte-identical across runs)."""
    return {key: _json_value(value) for key, value in sorted(model.get_params(deep=True).items())}


def _json_value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return _json_value(value.item())
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    named = isinstance(value, type) or (callable(value) and not hasattr(value, "get_params"))
    kind = value if named else type(value)  # a class or function by its name, anything else by its type
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', type(kind).__name__)}"
