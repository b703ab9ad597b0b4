"""The params.yaml schema: every knob of every stage, validated before any work starts.

params.yaml is read as YAML 1.2 (ruamel), exactly as DVC reads it, so an unquoted ``yes`` is
the string "yes" for the stage and for ``dvc params diff`` alike.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from onnxship.core.errors import UserError

Family = Literal["logistic_regression", "random_forest", "hist_gradient_boosting", "mlp"]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
MAX_TIME_BUDGET_S = 60.0  # per benchmark cell; 3 backends x batch sizes x threads cells in all


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DataParams(Section):
    path: str
    target: str
    positive_label: str | int
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    drop: list[str] = []
    # Bounds on what the data may be: a 50 MB cell or a 100,000-column file is a mistake (a free-text
    # field, a transposed export) that would otherwise bloat model.onnx and the JSON contract.
    max_columns: PositiveInt = 10_000
    max_category_chars: PositiveInt = 1_000

    @field_validator("positive_label", mode="before")
    @classmethod
    def _not_a_yaml_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError(
                f"the unquoted YAML boolean {str(value).lower()} is not a label: quote the target value "
                f'as written in the CSV, e.g. positive_label: "{str(value).lower()}"'
            )
        return value


class LogisticRegressionParams(Section):
    C: PositiveFloat = 1.0
    max_iter: PositiveInt = 1000
    class_weight: Literal["balanced"] | None = None


EarlyStopping = Literal["auto"] | bool


class RandomForestParams(Section):
    n_estimators: PositiveInt = 200
    max_depth: PositiveInt | None = None
    min_samples_leaf: PositiveInt = 1
    class_weight: Literal["balanced", "balanced_subsample"] | None = None
    # Rows drawn (bootstrap) for each tree, at most; null: as many as the fit set has.
    max_samples: PositiveInt | None = 20000


class HistGradientBoostingParams(Section):
    learning_rate: PositiveFloat = 0.1
    max_iter: PositiveInt = 200
    max_leaf_nodes: Annotated[int, Field(ge=2)] = 31
    min_samples_leaf: PositiveInt = 20
    l2_regularization: Annotated[float, Field(ge=0)] = 0.0
    class_weight: Literal["balanced"] | None = None
    early_stopping: EarlyStopping = "auto"
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    n_iter_no_change: PositiveInt = 10


class MLPParams(Section):
    hidden_layer_sizes: list[PositiveInt] = [100]
    alpha: Annotated[float, Field(ge=0)] = 1e-4
    learning_rate_init: PositiveFloat = 1e-3
    max_iter: PositiveInt = 300
    early_stopping: EarlyStopping = "auto"
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    n_iter_no_change: PositiveInt = 10


class ScreenParams(Section):
    rows: PositiveInt | None = 20000
    keep: PositiveInt = 2


class SelectionParams(Section):
    prefer_cheaper: bool = True
    noise_sigmas: Annotated[float, Field(ge=0)] = 1.0
    max_score_loss: Annotated[float, Field(ge=0)] = 0.005
    tree_counts: list[PositiveInt] = [25, 50, 75, 100, 150, 200]


class TrainParams(Section):
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42  # numpy's seed range
    test_size: Annotated[float, Field(gt=0, lt=1)] = 0.2
    test_max_rows: PositiveInt | None = 100000
    n_jobs: PositiveInt = 2
    refit_threads: PositiveInt = 1
    early_stopping_min_rows: PositiveInt = 10000
    screen: ScreenParams = ScreenParams()
    cv_folds: Annotated[int, Field(ge=2)] = 5
    cv_metric: Literal["average_precision", "roc_auc", "neg_log_loss", "f1", "balanced_accuracy"] = (
        "average_precision"
    )
    threshold_objective: Literal["f1", "balanced_accuracy", "youden_j"] = "f1"
    max_categories: PositiveInt | None = 100
    min_frequency: PositiveInt = 1
    calibration_rows: PositiveInt = 2000
    numeric_transformer: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")] | None = None
    candidates: Annotated[list[Family], Field(min_length=1)]
    logistic_regression: LogisticRegressionParams = LogisticRegressionParams()
    random_forest: RandomForestParams = RandomForestParams()
    hist_gradient_boosting: HistGradientBoostingParams = HistGradientBoostingParams()
    mlp: MLPParams = MLPParams()
    selection: SelectionParams = SelectionParams()

    @model_validator(mode="after")
    def _unique_candidates(self) -> TrainParams:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError(f"train.candidates lists a family twice: {self.candidates}")
        return self


class ExportParams(Section):
    target_opset: Annotated[int, Field(ge=13)] = 17
    linear_as_matmul: bool = False
    converter_modules: list[str] = []


class QuantizeParams(Section):
    mode: Literal["dynamic", "static"] = "dynamic"
    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    per_channel: bool = False
    reduce_range: bool = False
    split_blocks: bool = True
    exclude_search: bool = True
    search_headroom: Annotated[float, Field(gt=0, le=1)] = 0.5


class Tolerance(Section):
    max_abs_diff: Annotated[float, Field(ge=0)]
    min_agreement: Fraction


class ParityTolerances(Section):
    onnx: Tolerance
    int8: Tolerance


class ParityParams(Section):
    margin: Annotated[float, Field(ge=0)] = 0.01
    max_rows: PositiveInt | None = 20000
    edge_rows: bool = True
    max_edge_rows: Annotated[int, Field(ge=1)] = 400
    max_rows_listed: Annotated[int, Field(ge=0)] = 20
    int8_on_failure: Literal["fail", "not_deployable"] = "not_deployable"
    diagnose: Literal["on_failure", "always", "never"] = "on_failure"
    tolerances: ParityTolerances


class BenchmarkParams(Section):
    batch_sizes: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 64, 1024]
    threads: Annotated[list[PositiveInt], Field(min_length=1)] = [1]
    warmup: Annotated[int, Field(ge=0)] = 20
    min_repetitions: PositiveInt = 50
    # Capped: a cell runs until its budget is spent, so a typo (1e6) would hang the stage for days.
    time_budget_s: Annotated[float, Field(ge=0, le=MAX_TIME_BUDGET_S)] = 0.5

    @field_validator("threads", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class RecommendParams(Section):
    serving_batch_size: PositiveInt = 1


class Params(Section):
    data: DataParams
    train: TrainParams
    export: ExportParams = ExportParams()
    quantize: QuantizeParams = QuantizeParams()
    parity: ParityParams
    benchmark: BenchmarkParams = BenchmarkParams()
    recommend: RecommendParams = RecommendParams()


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the schema allows at ``loc`` (for did-you-mean suggestions)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        model = field.annotation
    return list(model.model_fields)


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    dotted = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known_keys(Params, loc[:-1]), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{dotted}'{hint}; remove it or fix its spelling"
    if error["type"] == "missing":
        return f"missing required key '{dotted}'; add it"
    return f"'{dotted}': {error['msg']} (got {error.get('input')!r})"


def parse_params(raw: object) -> Params:
    """Validate a params mapping; raise UserError naming the first bad key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key is also a missing one: name the misspelling (with its did-you-mean) first.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        raise UserError(f"params.yaml: {_describe(first)}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run from the project root, where params.yaml lives")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise UserError(f"{path} line {line} is not UTF-8 text: save params.yaml as UTF-8") from None
    try:
        raw = YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        # ruamel's problem names the key or token (e.g. 'found duplicate key "seed" ...'); its mark
        # says where. str(exc) starts with the context, which names neither.
        where = f" line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise UserError(f"{path}{where} is not valid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a mapping of sections (data, train, ...)")
    return parse_params(raw)
