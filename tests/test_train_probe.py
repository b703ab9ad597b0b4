"""A hostile probe of the train stage, kept as a table: bad params and bad training CSVs, each run
as `python scripts/train.py` runs (in this process, as tests/test_cli.py does). Every case ends in
one `error:` line with exit 2 naming what to fix, or trains; none gives a traceback.

Written without looking at tests/corpus/; each row is one class of input (issue 21, items 4 to 6).
"""

from __future__ import annotations

import json
import runpy

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

# 60 rows: a numeric column that repeats (not an ID), a categorical, 20 positives.
GOOD = "a,c,y\n" + "".join(f"{(i * 7) % 11},{'uv'[i % 2]},{'pq'[i % 3 == 0]}\n" for i in range(60))
# 400 rows, 100 positives: room for a screen.
BIG = "a,c,y\n" + "".join(f"{(i * 7) % 11}.5,{'uvw'[i % 3]},{'pq'[i % 4 == 0]}\n" for i in range(400))
THREE = ["logistic_regression", "random_forest", "mlp"]


def rows(n: int, cell: str = "u") -> str:
    return "".join(f"{i % 5},{cell},{'pq'[i % 3 == 0]}\n" for i in range(n))


# (id, train params edits, data edits, CSV text or bytes, expected: error words, or None to train)
CASES = [
    # --- params alone: refused when params load ---------------------------------------------------
    (
        "lr-inf",
        {"hist_gradient_boosting": {"learning_rate": float("inf")}},
        {},
        GOOD,
        ["'train.hist_gradient_boosting.learning_rate'", "finite number"],
    ),
    (
        "lr-nan",
        {"hist_gradient_boosting": {"learning_rate": float("nan")}},
        {},
        GOOD,
        ["'train.hist_gradient_boosting.learning_rate'", "finite number"],
    ),
    (
        "C-inf",
        {"logistic_regression": {"C": float("inf")}},
        {},
        GOOD,
        ["'train.logistic_regression.C'", "finite"],
    ),
    ("alpha-inf", {"mlp": {"alpha": float("inf")}}, {}, GOOD, ["'train.mlp.alpha'", "finite number"]),
    ("noise-nan", {"selection": {"noise_sigmas": float("nan")}}, {}, GOOD, ["noise_sigmas", "finite number"]),
    ("xgb-inf", {"xgboost": {"min_child_weight": float("inf")}}, {}, GOOD, ["min_child_weight", "finite"]),
    ("threshold-nan", {"threshold": float("nan")}, {}, GOOD, ["'train.threshold'", "finite number"]),
    (
        "screen-below-folds",
        {"screen": {"rows": 3}, "candidates": THREE},
        {},
        GOOD,
        ["train.screen.rows 3 is below 2 x train.cv_folds (4)"],
    ),
    ("cv-folds-1", {"cv_folds": 1}, {}, GOOD, ["'train.cv_folds'", "greater than or equal to 2"]),
    ("threshold-1", {"threshold": 1.0}, {}, GOOD, ["'train.threshold'", "less than 1"]),
    ("seed-2-40", {"seed": 2**40}, {}, GOOD, ["'train.seed'"]),
    ("max-columns-1", {}, {"max_columns": 1}, GOOD, ["3 columns, more than data.max_columns (1)"]),
    # --- params against the data: refused once the rows are read, before any fit ----------------------
    ("test-max-rows-1", {"test_max_rows": 1}, {}, GOOD, ["capped by train.test_max_rows 1", "raise"]),
    ("cv-folds-above-class", {"cv_folds": 30}, {}, GOOD, ["the minority class has 20 rows", "30-fold"]),
    ("test-size-huge", {"test_size": 0.99}, {}, GOOD, ["train.test_size 0.99 leaves", "lower"]),
    (
        "screen-sample-short",
        {"screen": {"rows": 12, "keep": 1}, "cv_folds": 6, "candidates": THREE},
        {},
        BIG,
        ["train.screen.rows 12 samples 3 rows of the smaller class", "train.cv_folds 6"],
    ),
    (
        "hgb-validation-split",
        {
            "candidates": ["hist_gradient_boosting"],
            "hist_gradient_boosting": {"early_stopping": True, "validation_fraction": 0.01},
        },
        {},
        GOOD,
        ["train.hist_gradient_boosting.validation_fraction 0.01", "early_stopping to false"],
    ),
    (
        "mlp-validation-split",
        {"candidates": ["mlp"], "mlp": {"early_stopping": True, "validation_fraction": 0.01}},
        {},
        GOOD,
        ["train.mlp.validation_fraction 0.01", "early_stopping to false"],
    ),
    ("factory-missing", {"candidates": ["nope_mod:build"]}, {}, GOOD, ["nope_mod"]),
    ("fitted-model-missing", {"fitted_model": "models/none.joblib"}, {}, GOOD, ["models/none.joblib"]),
    ("data-path-folder", {}, {"path": "data"}, GOOD, ["data file data is a folder"]),
    (
        "numeric-transformer-missing",
        {"numeric_transformer": "nope_mod:Cls"},
        {},
        GOOD,
        ["train.numeric_transformer 'nope_mod:Cls' cannot be loaded"],
    ),
    ("fitted-model-not-joblib", {"fitted_model": "data/d.csv"}, {}, GOOD, ["train.fitted_model data/d.csv"]),
    # --- params that look odd but are valid: train, no traceback -----------------------------------
    ("max-categories-1", {"max_categories": 1}, {}, GOOD, None),
    ("min-frequency-huge", {"min_frequency": 10**9}, {}, GOOD, None),
    ("calibration-rows-huge", {"calibration_rows": 10**9}, {}, GOOD, None),
    (
        "forest-max-samples-1",
        {"candidates": ["random_forest"], "random_forest": {"max_samples": 1, "n_estimators": 5}},
        {},
        GOOD,
        None,
    ),
    (
        "tree-counts-empty",
        {
            "candidates": ["hist_gradient_boosting"],
            "selection": {"tree_counts": []},
            "hist_gradient_boosting": {"max_iter": 10},
        },
        {},
        GOOD,
        None,
    ),
    # --- training CSVs: the scorer's rules and messages ----------------------------------------------
    (
        "last-field-missing",
        {},
        {},
        GOOD + "1,u\n" + rows(5),
        ["row 61 (line 62): has 2 fields but the header has 3"],
    ),
    (
        "field-too-many",
        {},
        {},
        GOOD.replace("\n4,v,p\n", "\n4,v,p,x\n", 1),
        ["has 4 fields but the header has 3"],
    ),
    (
        "nul-after-64k",
        {},
        {},
        "a,c,y\n" + rows(2500, "u" * 30) + "1,ab\x00cd,p\n",
        ["line 2502 has a NUL byte"],
    ),
    ("nul-in-header", {}, {}, "a,c\x00,y\n" + rows(40), ["line 1 has a NUL byte", "not a text CSV file"]),
    ("cr-only", {}, {}, GOOD.replace("\n", "\r"), None),  # a lone CR ends a line, as in the scorer
    (
        "cr-in-unquoted-field",
        {},
        {},
        GOOD.replace("\n3,v", "\n3,v\rw", 1),
        ["has 2 fields but the header has 3"],  # the CR ended the line, as in the scorer
    ),
    ("bad-utf8-late", {}, {}, GOOD.encode() + b"1,caf\xe9,p\n", ["line 62 is not UTF-8 text"]),
    ("unterminated-quote", {}, {}, GOOD + '1,"u,p\n', ["line 62 is not valid CSV (unexpected end of data)"]),
    (
        "text-after-quote",
        {},
        {},
        GOOD + '1,"u"x,p\n',
        ["line 62 is not valid CSV", "',' expected after '\"'"],
    ),
    ("bom-only-line", {}, {}, GOOD + "\ufeff\n", ["has 1 fields but the header has 3"]),
    ("header-only-crlf", {}, {}, "a,c,y\r\n", ["has a header but no data rows"]),
    (
        "only-target",
        {},
        {},
        "y\n" + "".join(f"{'pq'[i % 3 == 0]}\n" for i in range(40)),
        ["no feature columns"],
    ),
    (
        "all-na-column",
        {},
        {},
        "a,n,c,y\n" + "".join(f"{i % 5},NA,u,{'pq'[i % 3 == 0]}\n" for i in range(40)),
        ["columns ['n'] have no values at all", "data.drop"],
    ),
    (
        "all-missing-tokens",
        {},
        {},
        "a,n,c,y\n"
        + "".join(f"{i % 5},{['NA', '', 'null', 'NaN'][i % 4]},u,{'pq'[i % 3 == 0]}\n" for i in range(40)),
        ["columns ['n'] have no values at all"],
    ),
    ("inf-text", {}, {}, GOOD.replace("\n3,v", "\ninf,v", 1), ["column 'a' looks numeric", "'inf'"]),
    (
        "number-beyond-float32",
        {},
        {},
        GOOD.replace("\n3,v", "\n1e400,v", 1),
        ["numeric column 'a' has an infinite or out-of-float32-range value '1e400'"],
    ),
    ("bom-crlf-blank-lines", {}, {}, "\ufeff" + GOOD.replace("\n", "\r\n\r\n"), None),
]


def ids() -> list[str]:
    return [case[0] for case in CASES]


def write_project(tmp_path, train: dict, data: dict, csv) -> None:
    (tmp_path / "data").mkdir()
    raw = csv if isinstance(csv, bytes) else csv.encode("utf-8")
    (tmp_path / "data" / "d.csv").write_bytes(raw)
    params = {
        "data": {"path": "data/d.csv", "target": "y", "positive_label": "p", **data},
        "train": {"candidates": ["logistic_regression"], "cv_folds": 2, **train},
    }
    with open(tmp_path / "params.yaml", "w", encoding="utf-8") as handle:
        YAML(typ="safe", pure=True).dump(params, handle)


@pytest.mark.parametrize(("name", "train", "data", "csv", "expected"), CASES, ids=ids())
def test_train_probe(tmp_path, monkeypatch, capsys, name, train, data, csv, expected):
    write_project(tmp_path, train, data, csv)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "scripts" / "train.py"), run_name="__main__")
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr, stderr
    if expected is None:
        assert exit_info.value.code == 0, stderr
        assert json.loads((tmp_path / "artifacts" / "lineage.json").read_text())["roles"]["numeric"] == ["a"]
        return
    assert exit_info.value.code == 2, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and [line for line in stderr.splitlines() if "error" in line] == [last]
    missing = [word for word in expected if word not in last]
    assert not missing, f"{missing} not in {last}"
    assert not (tmp_path / "artifacts" / "best_model.joblib").exists()
