"""The params.yaml schema, part 2, and loading: the sections of the stages after train (export,
quantize, parity, benchmark, recommend), the root model with the rules that span sections, and
``load_params``, all checked before any work. Shared types and the data and train sections are in
onnxship/core/sections.py; every knob has a default (except data's and train.candidates) and a
description, from which tools/params_doc.py generates docs/params.md.

params.yaml is read as YAML 1.2 (ruamel), exactly as DVC reads it, so an unquoted ``yes`` is the
string "yes" for the stage and for ``dvc params diff`` alike.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from onnxship.core.errors import UserError
from onnxship.core.sections import (
    DataParams,
    EarlyStopping,
    Family,
    Fraction,
    HistGradientBoostingParams,
    LogisticRegressionParams,
    MLPParams,
    PositiveFloat,
    PositiveInt,
    RandomForestParams,
    ScreenParams,
    Section,
    SelectionParams,
    TrainParams,
)

__all__ = [
    "DEFAULT_TOLERANCES",
    "MAX_TIME_BUDGET_S",
    "BenchmarkParams",
    "DataParams",
    "EarlyStopping",
    "ExportParams",
    "Family",
    "Fraction",
    "HistGradientBoostingParams",
    "LogisticRegressionParams",
    "MLPParams",
    "Params",
    "ParityParams",
    "ParityTolerances",
    "PositiveFloat",
    "PositiveInt",
    "QuantizeParams",
    "RandomForestParams",
    "RecommendParams",
    "ScreenParams",
    "Section",
    "SelectionParams",
    "Tolerance",
    "TrainParams",
    "load_params",
    "parse_params",
]


MAX_TIME_BUDGET_S = 60.0  # per benchmark cell; 3 backends x batch sizes x threads cells in all
# The parity gate's tolerances when params.yaml leaves one out (a backend's block may be partial).
DEFAULT_TOLERANCES = {
    "onnx": {"max_abs_diff": 1.0e-4, "min_agreement": 1.0},
    "int8": {"max_abs_diff": 0.1, "min_agreement": 0.995},
}


class ExportParams(Section):
    """`export`: the skl2onnx conversion (read by export)."""

    target_opset: Annotated[int, Field(ge=13)] = Field(
        17,
        description="ONNX default-domain opset of model.onnx; lower it for an older runtime. The ai.onnx.ml "
        "opset follows skl2onnx. Refused outside what the installed onnx and skl2onnx support.",
    )
    linear_as_matmul: bool = Field(
        False,
        description="true: logistic regression as MatMul + Add + Sigmoid, which INT8 can quantize (the "
        "ai.onnx.ml LinearClassifier it uses otherwise cannot be quantized).",
    )
    converter_modules: list[str] = Field(
        [],
        description="Modules that register skl2onnx converters for your own transformers "
        "(see plugins/clip.py), imported before the conversion.",
    )
    contract_version: Literal[1, 2] = Field(
        2,
        description="onnx_features.json's schema_version. 2: the graph takes two packed inputs, float32 "
        "[n, K] `numeric` and string [n, M] `categorical` (the model call stays as fast at 2,000 "
        "columns as at 20: docs/contract.md); 1: one [n, 1] input per column, for a client that "
        "reads only contract v1.",
    )


class QuantizeParams(Section):
    """`quantize`: the INT8 model (read by quantize, with parity.tolerances.int8 and parity.max_edge_rows)."""

    mode: Literal["dynamic", "static"] = Field(
        "dynamic",
        description="dynamic: activations quantized per call with the batch's range (a row's result can "
        "depend on its neighbours); static: QDQ with activation ranges calibrated on "
        "artifacts/calibration.csv, so each row's result is independent of its batch.",
    )
    weight_type: Literal["QInt8", "QUInt8"] = Field(
        "QUInt8",
        description="Unsigned or signed 8-bit weights. QUInt8: ONNX Runtime's uint8 x uint8 kernels, exact "
        "on every CPU; QInt8: uint8 x int8 kernels, which add pairs of products in a saturating int16 on "
        "x86 CPUs without VNNI (see reduce_range). Same size and speed measured (docs/parity.md).",
    )
    per_channel: bool = Field(
        False, description="One weight scale per output column instead of one per tensor (more accurate)."
    )
    reduce_range: bool | Literal["auto"] = Field(
        "auto",
        description="7-bit weights: a pair of uint8 x int8 products then fits the int16 that CPUs without "
        "VNNI add them in, so the INT8 file computes the same integers on every CPU. auto: true for "
        "QInt8 weights, false for QUInt8 (uint8 x uint8 kernels never saturate). false: 8-bit weights; "
        "the search and the gate then check both kernel families (docs/parity.md).",
    )
    split_blocks: bool = Field(
        True,
        description="Split a MatMul fed by the preprocessing Concat into one MatMul per block (numeric, "
        "one-hot), so the search can quantize the bounded one-hot rows and keep unbounded numeric inputs "
        "in FP32; blocks that end up alike are merged back.",
    )
    exclude_search: bool = Field(
        True,
        description="Keep in FP32, greedily, the MatMul/Gemm nodes whose quantization breaks the target on "
        "calibration and edge rows; false: quantize them all.",
    )
    search_headroom: Annotated[float, Field(gt=0, le=1)] = Field(
        0.5,
        description="The search's target is this fraction of parity.tolerances.int8 (max diff and allowed "
        "flips), since the gate then scores other rows (the test split).",
    )


class Tolerance(Section):
    """One backend's parity tolerance against scikit-learn."""

    max_abs_diff: Annotated[float, Field(ge=0)] = Field(
        description="Largest |p_sklearn - p_backend| allowed on any scored row (probability units)."
    )
    min_agreement: Fraction = Field(
        description="Share of scored rows whose decision (p >= threshold) must match scikit-learn's."
    )


class ParityTolerances(Section):
    """`parity.tolerances`: what each backend must meet; a block may give one of its two values."""

    onnx: Tolerance = Field(
        Tolerance(**DEFAULT_TOLERANCES["onnx"]),
        description="ONNX FP32 vs scikit-learn: only float32 rounding separates them.",
    )
    int8: Tolerance = Field(
        Tolerance(**DEFAULT_TOLERANCES["int8"]),
        description="ONNX INT8 vs scikit-learn: quantized weights move probabilities.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_partial(cls, value: object) -> object:
        # `onnx: {max_abs_diff: 2e-4}` keeps the default min_agreement rather than failing.
        if not isinstance(value, dict):
            return value
        return {
            key: {**DEFAULT_TOLERANCES[key], **given}
            if key in DEFAULT_TOLERANCES and isinstance(given, dict)
            else given
            for key, given in value.items()
        }


class ParityParams(Section):
    """`parity`: the gate that compares each ONNX backend with scikit-learn (read by parity)."""

    margin: Annotated[float, Field(ge=0)] = Field(
        0.01,
        description="Rows with |p - threshold| <= margin count as fragile decisions (reported apart: "
        "float32 rounding may flip them).",
    )
    max_rows: PositiveInt | None = Field(
        20000,
        description="Held-out rows the gate scores, at most (null: all): the first N of test.csv, which "
        "train writes shuffled, so a random sample.",
    )
    edge_rows: bool = Field(
        True, description="Also score generated rows: unseen categories, missing values, outliers."
    )
    max_edge_rows: Annotated[int, Field(ge=1)] = Field(
        400,
        description="Generated rows at most: one per column and case up to this many; a wider table groups "
        "columns per row, so the gate's cost stays linear in the columns. Quantize's search uses them too.",
    )
    max_boundary_rows: Annotated[int, Field(ge=0)] = Field(
        2000,
        description="Tree boundary rows at most (0: none): per split of the shipped trees on a raw numeric "
        "column, a held-out row that reaches it with the column at the float32 just below and just above "
        "the threshold; beyond this a seeded sample that covers every column first.",
    )
    max_rows_listed: Annotated[int, Field(ge=0)] = Field(
        20, description="Flipped rows listed in the report, closest to the threshold first."
    )
    int8_on_failure: Literal["fail", "not_deployable"] = Field(
        "not_deployable",
        description="fail: INT8 outside its tolerances fails the stage (exit 1); not_deployable: the "
        "report marks INT8 not deployable and FP32 alone decides.",
    )
    diagnose: Literal["on_failure", "always", "never"] = Field(
        "on_failure",
        description="When the report gets a diagnosis block per backend (first diverging pipeline step, "
        "input columns, contract field, INT8 node).",
    )
    tolerances: ParityTolerances = Field(ParityTolerances(), description="What each backend must meet.")


class BenchmarkParams(Section):
    """`benchmark`: latency of scikit-learn, ONNX FP32 and ONNX INT8 (read by benchmark)."""

    batch_sizes: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        [1, 64, 1024],
        description="Rows per call measured; include the batch size you serve "
        "(recommend.serving_batch_size).",
    )
    threads: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        [1],
        description="ONNX Runtime and BLAS threads; one number or a list, each measured (the first one "
        "draws the plot and decides the recommendation).",
    )
    warmup: Annotated[int, Field(ge=0)] = Field(20, description="Untimed calls before each cell.")
    min_repetitions: PositiveInt = Field(
        50,
        description="Timed calls per cell at least ... (fewer, never under 3, when one call is so slow "
        "that warmup + min_repetitions calls overrun time_budget_s: the cell's samples and "
        "fewer_samples_because say so)",
    )
    # Capped: a cell runs until its budget is spent, so a typo (1e6) would hang the stage for days.
    time_budget_s: Annotated[float, Field(ge=0, le=MAX_TIME_BUDGET_S)] = Field(
        0.5,
        description="... and on until this many seconds are spent on the cell (at most 60; 0: exactly "
        "min_repetitions).",
    )

    @field_validator("threads", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class RecommendParams(Section):
    """`recommend`: which backend to serve (read by recommend)."""

    serving_batch_size: PositiveInt = Field(
        1,
        description="The batch size your service scores: the fastest passing backend at this size wins. "
        "Must be one of benchmark.batch_sizes.",
    )


class Params(Section):
    """All of params.yaml. data and train have required keys; every other section may be left out."""

    data: DataParams = Field(description="The CSV and its columns.")
    train: TrainParams = Field(description="Split, candidates, CV, threshold, refit.")
    export: ExportParams = Field(ExportParams(), description="The ONNX conversion.")
    quantize: QuantizeParams = Field(QuantizeParams(), description="The INT8 model.")
    parity: ParityParams = Field(ParityParams(), description="The parity gate.")
    benchmark: BenchmarkParams = Field(BenchmarkParams(), description="The latency benchmark.")
    recommend: RecommendParams = Field(RecommendParams(), description="Which backend to serve.")

    @model_validator(mode="after")
    def _serving_batch_is_benchmarked(self) -> Params:
        # recommend compares backends at this batch size, which only the benchmark measures: refused
        # here, before train spends its minutes, rather than in the last stage.
        batch, sizes = self.recommend.serving_batch_size, self.benchmark.batch_sizes
        if batch not in sizes:
            raise ValueError(
                f"recommend.serving_batch_size {batch} is not one of benchmark.batch_sizes {sizes}: "
                f"add {batch} to benchmark.batch_sizes, or serve one of those sizes"
            )
        return self


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
    if error["type"] == "value_error":
        # Our validator's own message, which names the value (pydantic's msg adds "Value error, ");
        # a rule on a section or across sections names its keys too, so gets no prefix.
        message = str(error["ctx"]["error"])
        return message if not loc or dotted in message else f"'{dotted}': {message}"
    got = error.get("input")
    # A whole section (a mapping, or a list where a section belongs) would bury the message.
    shown = "" if isinstance(got, dict) or (isinstance(got, list) and len(loc) <= 1) else f" (got {got!r})"
    return f"'{dotted}': {error['msg']}{shown}"


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
