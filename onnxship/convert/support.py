"""Which steps of an estimator convert to ONNX, asked before training and again at export.

``steps`` walks any scikit-learn estimator, fitted or not (a bare classifier, a Pipeline, nested
Pipelines, ColumnTransformers and ensembles with named sub-estimators) and names every step by its
path, e.g. ``preprocess/numeric/spline``. ``problems`` lists the steps that will not convert: no
converter registered with skl2onnx, or a setting known not to convert (``KNOWN_LIMITS``).
``check_convertible`` turns the first one into the one-line error the train stage stops with,
before any cross-validation is spent on a model that could never ship; ``failing_step`` finds the
step a skl2onnx error came from at export, so that error names it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier, VotingClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from onnxship.convert import converters, ufuncs
from onnxship.core.errors import UserError

# Containers skl2onnx parses itself (no converter of their own): only their steps are checked.
STRUCTURAL = (Pipeline, ColumnTransformer, FeatureUnion)
WAY_OUT = (
    "register a converter with skl2onnx.update_registered_converter in a module listed under "
    "export.converter_modules (docs/data.md, the custom-converter recipe), or use another step"
)


def children(estimator) -> list[tuple[str, object]]:
    """The named sub-estimators of ``estimator``: its fitted ones once fitted, else its params."""
    if isinstance(estimator, Pipeline):
        return list(estimator.steps)
    if isinstance(estimator, ColumnTransformer):
        fitted = getattr(estimator, "transformers_", None)
        listed = [(n, s) for n, s, _ in (fitted if fitted is not None else estimator.transformers)]
        if fitted is None and isinstance(estimator.remainder, BaseEstimator):
            listed.append(("remainder", estimator.remainder))
        return listed
    if isinstance(estimator, FeatureUnion):
        return list(estimator.transformer_list)
    if not isinstance(estimator, BaseEstimator):
        return []
    found: list[tuple[str, object]] = []
    named = getattr(estimator, "named_estimators_", None)  # a fitted Voting/Stacking ensemble
    if named:
        found.extend(named.items())
    elif _is_named_list(getattr(estimator, "estimators", None)):
        found.extend(estimator.estimators)
    for key, value in estimator.get_params(deep=False).items():
        if isinstance(value, BaseEstimator):
            fitted = _fitted_param(estimator, key)
            found.append((key, fitted if isinstance(fitted, BaseEstimator) else value))
    return found


def _fitted_param(estimator, key: str):
    """The fitted counterpart of the estimator-valued param ``key``: ``<key>_`` (e.g. a stacking
    ensemble's final_estimator_), or a CalibratedClassifierCV's first fitted base estimator."""
    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if key == "estimator" and calibrated:
        return calibrated[0].estimator
    return getattr(estimator, f"{key}_", None)


def _is_named_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value)


def steps(estimator, path: str = "") -> Iterator[tuple[str, object]]:
    """(path, step) for ``estimator`` and every step inside it, depth first; "drop" and
    "passthrough" are skipped."""
    if isinstance(estimator, str) or estimator is None:
        return
    yield path, estimator
    for name, child in children(estimator):
        yield from steps(child, f"{path}/{name}" if path else name)


def _hgb_categorical(step) -> str | None:
    fitted = getattr(step, "is_categorical_", None)
    declared = step.categorical_features
    native = fitted.any() if fitted is not None else declared is not None and not isinstance(declared, str)
    if native:
        # skl2onnx 1.20 converts the trees but not their category-set splits: measured 904 of 3,000
        # decisions flipped (onnx/sklearn-onnx#1051). Codes as plain numbers convert exactly.
        return (
            "native categorical features (categorical_features) do not convert to ONNX correctly "
            "(onnx/sklearn-onnx#1051): leave categorical_features unset and give the trees ordinal "
            "category codes as numbers (docs/data.md)"
        )
    return None


def _function(step) -> str | None:
    reason = ufuncs.refusal(step)
    return (
        None
        if reason is None
        else f"{reason}; put the function in a transformer class of your own and {WAY_OUT}"
    )


def _hard_voting(step) -> str | None:
    if step.voting == "soft":
        return None
    return "hard voting has no predict_proba to ship: use VotingClassifier(voting='soft') (docs/data.md)"


def _distance_weights(step) -> str | None:
    if step.weights == "uniform":
        return None
    # skl2onnx 1.20 converts weights="distance" wrongly: 0.24 max diff on 200 random rows.
    return (
        f"weights={step.weights!r} does not convert to ONNX correctly: use weights='uniform' (docs/data.md)"
    )


def _decision_function_stack(step) -> str | None:
    methods = getattr(step, "stack_method_", None)
    if methods is None:  # unfitted: "auto" picks decision_function where predict_proba is missing
        bases = [e for _, e in step.estimators if not isinstance(e, str)]
        auto = step.stack_method == "auto" and any(not hasattr(e, "predict_proba") for e in bases)
        methods = ["decision_function"] if auto or step.stack_method == "decision_function" else []
    if "decision_function" not in methods:
        return None
    # skl2onnx 1.20 writes a graph ONNX Runtime cannot run (LinearClassifier coefficient sizes).
    return (
        "a base estimator stacked by its decision_function does not convert to ONNX: give every base "
        "estimator predict_proba (e.g. CalibratedClassifierCV(LinearSVC())) (docs/data.md)"
    )


# Settings that have a converter but do not convert (correctly): type -> why not, or None.
KNOWN_LIMITS: dict[type, Callable[[object], str | None]] = {
    HistGradientBoostingClassifier: _hgb_categorical,
    FunctionTransformer: _function,
    VotingClassifier: _hard_voting,
    KNeighborsClassifier: _distance_weights,
    StackingClassifier: _decision_function_stack,
}


def problems(estimator) -> list[tuple[str, type, str]]:
    """(path, class, why) for every step of ``estimator`` that will not convert to ONNX."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    converters.register_builtin()
    found = []
    for path, step in steps(estimator):
        if isinstance(step, STRUCTURAL):
            continue
        if type(step) not in sklearn_operator_name_map:
            found.append((path, type(step), f"skl2onnx has no converter for it: {WAY_OUT}"))
            continue
        limit = KNOWN_LIMITS.get(type(step))
        why = limit(step) if limit else None
        if why:
            found.append((path, type(step), why))
    return found


def describe(path: str, cls: type, why: str) -> str:
    """One line naming the step, its class and what to do."""
    where = f"step '{path}'" if path else "the estimator"
    return f"{where} ({cls.__module__}.{cls.__name__}) cannot be converted to ONNX: {why}"


def check_convertible(estimator, name: str) -> None:
    """Raise a UserError naming the first step of the (unfitted) candidate ``name`` that will not
    convert to ONNX. The train stage calls this before cross-validating the candidate."""
    found = problems(estimator)
    if found:
        raise UserError(f"train.candidates '{name}': {describe(*found[0])}")


def failing_step(error: BaseException, estimator) -> tuple[str, type] | None:
    """The step of ``estimator`` that skl2onnx was converting (or parsing) when ``error`` was
    raised: the innermost frame of its traceback that holds one of the estimator's steps, as
    skl2onnx's converters hold ``operator.raw_operator`` and its parser ``model``."""
    known = {id(step): path for path, step in steps(estimator)}
    found = None
    trace = error.__traceback__
    while trace is not None:
        local = trace.tb_frame.f_locals
        for candidate in (getattr(local.get("operator"), "raw_operator", None), local.get("model")):
            if candidate is not None and id(candidate) in known:
                found = (known[id(candidate)], type(candidate))
        trace = trace.tb_next
    return found
