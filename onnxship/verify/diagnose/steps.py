"""scikit-learn's side: each step of the fitted pipeline, its output on the examined rows, and the
input column (and category) behind each output column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from onnxship.verify.diagnose.records import Step


def sklearn_steps(pipeline, X: pd.DataFrame) -> list[Step]:
    """Each step's output on ``X`` in data-flow order, with the input columns it covers.

    Steps: per ColumnTransformer branch its column selection and each sub-step, then the
    ColumnTransformer output (``preprocess``), then the model's probabilities.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = []
    if not isinstance(pipeline, Pipeline):  # a classifier of your own with no steps to name
        return [Step(type(pipeline).__name__, "model", pipeline.predict_proba(X), None, pipeline, None)]
    prep_name, prep = pipeline.steps[0]
    if isinstance(prep, ColumnTransformer):
        for name, transformer, columns in branches(prep):
            steps += branch_steps(f"{prep_name}/{name}", name, transformer, X[list(columns)])
        steps.append(Step(prep_name, "concat", dense(prep.transform(X)), None, prep, None))
    model_name, model = pipeline.steps[-1]
    steps.append(Step(model_name, "model", pipeline.predict_proba(X), None, model, None))
    return steps


def branches(prep) -> list[tuple]:
    """The fitted ColumnTransformer's branches that compute something: (name, transformer, columns)."""
    return [
        (name, transformer, columns)
        for name, transformer, columns in prep.transformers_
        if transformer not in ("drop", "passthrough") and name != "remainder"
    ]


def branch_steps(prefix: str, branch: str, transformer, selected: pd.DataFrame) -> list[Step]:
    """One ColumnTransformer branch: its column selection, then each of its sub-steps."""
    from sklearn.pipeline import Pipeline

    columns = list(selected.columns)
    steps = [Step(prefix, "select", selected.to_numpy(), columns, None, branch)]
    subs = transformer.steps if isinstance(transformer, Pipeline) else [(branch, transformer)]
    current = selected
    for sub_name, sub in subs:
        before = current
        current = sub.transform(current)
        name = f"{prefix}/{sub_name}"
        steps.append(Step(name, "transform", dense(current), columns, sub, branch, input=dense(before)))
    return steps


def dense(value) -> np.ndarray:
    if hasattr(value, "toarray"):
        value = value.toarray()
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)


def column_labels(step: Step) -> list[str]:
    """For each output column of a step, the input column (and category) it comes from."""
    columns, estimator, width = step.columns, step.estimator, step.value.shape[1]
    if step.kind in ("select", "transform") and columns and width == len(columns):
        return list(columns)
    categories = getattr(estimator, "categories_", None)
    if categories is not None and columns and sum(len(c) for c in categories) == width:
        return [f"{col}={cat}" for col, cats in zip(columns, categories, strict=True) for cat in cats]
    if step.kind == "concat":
        labels = []
        for _, transformer, cols in branches(estimator):
            if hasattr(transformer, "get_feature_names_out"):
                labels += [str(o) for o in transformer.get_feature_names_out(list(cols))]
        if len(labels) == width:
            return labels
    return [f"column {j}" for j in range(width)]


def input_column(label: str) -> str:
    """The input column of an output column's label ("state=CA" -> "state")."""
    return label.split("=", 1)[0]
