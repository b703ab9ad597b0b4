"""Parameter combinations that only the data can refuse, checked when train has split the rows and
before any model is fitted: one ``UserError`` naming the keys, never a scikit-learn traceback from
the middle of cross-validation.

The rules on params alone (finite numbers, train.screen.rows against train.cv_folds, ...) are
checked when params load (onnxship/core/sections.py); the class counts against the split and the
folds are in onnxship.train.run (``check_class_sizes``, ``split_rows``).
"""

from __future__ import annotations

import math

import numpy as np

from onnxship.core.errors import UserError
from onnxship.core.params import TrainParams
from onnxship.train import training

EARLY_STOPPING = ("hist_gradient_boosting", "mlp")


def screen_runs(rows: int, tp: TrainParams) -> bool:
    """Whether the screen runs on ``rows`` training rows (see onnxship.train.run.screen)."""
    return tp.screen.rows is not None and rows > tp.screen.rows and len(tp.candidates) > tp.screen.keep


def check_screen_sample(y_train: np.ndarray, tp: TrainParams) -> None:
    """The screen's stratified sample needs train.cv_folds rows of each class, like the full CV; a
    rare class can fall short in a sample the whole file fills."""
    if not screen_runs(len(y_train), tp):
        return
    sample = y_train[training.stratified_subsample(y_train, tp.screen.rows, tp.seed)]
    minority = int(min(sample.sum(), len(sample) - sample.sum()))
    if minority < tp.cv_folds:
        raise UserError(
            f"train.screen.rows {tp.screen.rows} samples {minority} rows of the smaller class; "
            f"train.cv_folds {tp.cv_folds} needs at least {tp.cv_folds}: raise train.screen.rows "
            "(or set it to null), or lower train.cv_folds"
        )


def check_validation_split(y_train: np.ndarray, tp: TrainParams) -> None:
    """Early stopping holds out ceil(validation_fraction x fit rows), stratified, from every fit: the
    smallest fit set (a CV fold, of the screen's sample if the screen runs) must leave both sides
    two rows and each class two rows. ``tp`` has early_stopping decided (no "auto" left)."""
    rows = len(y_train)
    minority = int(min(y_train.sum(), rows - y_train.sum()))
    if screen_runs(rows, tp):
        minority = math.floor(minority * tp.screen.rows / rows)
        rows = tp.screen.rows
    fit = rows - math.ceil(rows / tp.cv_folds)
    fit_minority = minority - math.ceil(minority / tp.cv_folds)
    for family in EARLY_STOPPING:
        hyper = getattr(tp, family)
        if family not in tp.candidates or hyper.early_stopping is not True:
            continue
        held = math.ceil(hyper.validation_fraction * fit)
        if held < 2 or fit - held < 2 or fit_minority < 2:
            raise UserError(
                f"train.{family}.validation_fraction {hyper.validation_fraction} of the smallest fit "
                f"set ({fit} rows, {fit_minority} of the smaller class, in a CV fold) holds out {held} "
                f"rows for early stopping, which needs two of each class on both sides: raise "
                f"train.{family}.validation_fraction, or set train.{family}.early_stopping to false"
            )
