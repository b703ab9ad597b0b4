"""Conversion of the fitted pipeline to ONNX, and the JSON contract a non-Python client reads.

``build`` is the export stage: train's checked outputs in, the three contract files' content out.
"""

from __future__ import annotations

import copy as copy_module
import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import onnx
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import BaseEnsemble, HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, OrdinalEncoder, RobustScaler, StandardScaler
from sklearn.tree import BaseDecisionTree

from onnxship.contract import cpu, spec
from onnxship.convert import converters, decision, packing, schema, support, thresholds
from onnxship.convert.graph import normalize, simplify
from onnxship.core.errors import UserError
from onnxship.core.files import json_bytes, versions
from onnxship.core.params import ExportParams
from onnxship.core.paths import FEATURES_FILE, MODEL_FILE
from onnxship.train import boosters
from onnxship.train.lineage import Trained, positive_column
from onnxship.train.table import Roles
from onnxship.train.transformers import CategoryCodes

# Models whose splits compare a scaled value with a threshold (see exact_scaling).
TREE_MODELS = (BaseDecisionTree, BaseEnsemble, HistGradientBoostingClassifier, HistGradientBoostingRegressor)

# The lowest default-domain opset the exported graphs are written for (params.yaml allows no lower).
MIN_OPSET = 13

log = logging.getLogger("export")

# A contract v1 input's keys, in the order v1 files have always had.
V1_INPUT_KEYS = (
    "name",
    "onnx_name",
    "dtype",
    "shape",
    "role",
    "missing_allowed",
    "missing_value",
    "categories",
)


@dataclass(frozen=True)
class Exported:
    """The export stage's outputs, ready to write: model.onnx and onnx_features.json as bytes (the
    metadata records both files' sha256), and onnx_metadata.json."""

    model_bytes: bytes
    features_bytes: bytes
    metadata: dict


def build(trained: Trained, params: ExportParams) -> Exported:
    """Convert train's pipeline and describe it. The ONNX model passes onnx's full check and both
    JSON files their schemas (schemas/) before anything is returned: a client never sees an
    invalid contract."""
    model = convert(
        trained.pipeline,
        trained.roles,
        params.target_opset,
        params.linear_as_matmul,
        params.converter_modules,
    )
    version = params.contract_version
    if version == 2:
        packing.pack_inputs(model, packing.layout(trained.roles.numeric, trained.roles.categorical))
    decision.apply_threshold(model, tuned_decision(trained, version))
    onnx.checker.check_model(model, full_check=True)
    model_bytes = model.SerializeToString()
    recorded = trained.lineage.get("training_categories")  # a model that is not ours
    features = feature_schema(model, trained.roles, trained.pipeline, recorded, version)
    features_bytes = json_bytes(features)
    meta = metadata(model, model_bytes, trained.pipeline, trained.lineage, trained.threshold, features_bytes)
    schema.validate(features, "onnx_features")
    schema.validate(meta, "onnx_metadata")
    return Exported(model_bytes, features_bytes, meta)


def tuned_decision(trained: Trained, version: int = spec.CONTRACT_VERSION) -> decision.Decision:
    """What the graph's label output applies: train's threshold on the positive class's column."""
    target = trained.lineage["target"]
    return decision.Decision(
        threshold=trained.threshold,
        positive_column=positive_column(trained.pipeline.classes_, trained.lineage),
        classes=list(trained.pipeline.classes_),
        positive_label=target["positive_label"],
        negative_label=target["negative_label"],
        contract_version=version,
    )


def initial_types(roles: Roles) -> list[tuple[str, object]]:
    """One ONNX input per CSV column, named as in the CSV, shape [batch, 1]."""
    types = {name: FloatTensorType([None, 1]) for name in roles.numeric}
    types.update({name: StringTensorType([None, 1]) for name in roles.categorical})
    return [(name, types[name]) for name in roles.features]


def convert(
    pipeline: Pipeline,
    roles: Roles,
    target_opset: int,
    linear_as_matmul: bool = False,
    converter_modules: tuple[str, ...] = (),
) -> onnx.ModelProto:
    """skl2onnx conversion with ZipMap off, so probabilities are a plain [batch, 2] float tensor.

    ``pipeline`` may be any fitted classifier: ours, a user's Pipeline (nested ColumnTransformers,
    Pipelines, ensembles) or a bare estimator. A step that will not convert stops it with a
    UserError naming the step by its path (``onnxship.convert.support``), before skl2onnx runs or
    from skl2onnx's own failure.

    ``linear_as_matmul`` exports a linear classifier as MatMul + Add + Sigmoid instead of the
    ai.onnx.ml LinearClassifier op, so that dynamic quantization has something to quantize.
    """
    check_opset(target_opset)
    converters.register(list(converter_modules))
    found = support.problems(pipeline)
    if found:
        raise UserError(support.describe(*found[0]))
    # Trees compare in float32 in ONNX: round each split threshold so that they compare exactly as
    # scikit-learn does (onnxship.convert.thresholds). A copy: best_model.joblib stays as trained.
    exact = thresholds.align(lean(pipeline, roles))
    if exact.thresholds:
        log.info(
            "tree thresholds: %d of %d not float32 values, rounded down (the nearest float32 is above "
            "%d of them: rows there would branch differently in ONNX)",
            exact.moved,
            exact.thresholds,
            exact.nearest_above,
        )
    converted = joined_inputs(exact.estimator, roles)
    try:
        model = to_onnx(
            converted,
            initial_types=initial_types(roles),
            options={id(final_estimator(converted)): {"zipmap": False}, **exact_scaling(converted)},
            target_opset=target_opset,
            black_op={"LinearClassifier"} if linear_as_matmul else None,
        )
    except UserError:  # a converter's own one line (e.g. a LightGBM setting ONNX cannot express)
        raise
    except Exception as exc:  # skl2onnx raises many types; the user needs the step and the way out
        raise UserError(conversion_error(exc, pipeline, converted)) from exc
    return normalize(simplify(model))


def lean(pipeline: Pipeline, roles: Roles) -> Pipeline:
    """The pipeline to convert: ``pipeline`` itself, or a copy whose ordinal-encoded categorical
    chain (imputer, rare grouper, OrdinalEncoder) is replaced by the equal CategoryCodes table,
    which converts to one LabelEncoder per column instead of about eight ops per column."""
    if not isinstance(pipeline, Pipeline):  # a classifier of your own: converted as it is
        return pipeline
    pre = pipeline.named_steps.get("preprocess")
    chain = getattr(pre, "named_transformers_", {}).get("categorical")
    if not isinstance(getattr(chain, "named_steps", {}).get("encode"), OrdinalEncoder):
        return pipeline
    copy = clone_fitted(pipeline)
    transformers = copy.named_steps["preprocess"].transformers_
    for i, (name, _, columns) in enumerate(transformers):
        if name == "categorical":
            transformers[i] = (name, CategoryCodes.from_steps(chain, list(columns)).fit(None), columns)
    return copy


def exact_scaling(estimator) -> dict:
    """skl2onnx options that make every Standard/RobustScaler of a model with trees compute exactly what
    scikit-learn computes on float32 input, (x - mean) / scale in float32 (Sub, Div), instead of
    the Scaler op's (x - mean) * (1 / scale): one unit in the last place apart, enough for a row
    on a split threshold to take the other branch (measured on the bundled data: StandardScaler in
    front of HistGradientBoosting, 0.11 max diff and 2 flipped decisions; in front of a forest,
    0.033). Robust and MaxAbsScaler get the same from onnxship.convert.scaling. MinMaxScaler
    needs nothing (both compute in float32). Models without trees keep the Scaler op, so their
    exports do not change."""
    found = [step for _, step in support.steps(estimator)]
    if not any(
        isinstance(step, TREE_MODELS) or type(step).__name__.startswith(("LGBM", "XGB")) for step in found
    ):
        return {}
    options = {
        id(step): {"div": "div"} for step in found if isinstance(step, StandardScaler) and step.with_std
    }
    options.update(
        {id(step): {"exact": True} for step in found if isinstance(step, RobustScaler | MaxAbsScaler)}
    )
    return options


def joined_inputs(estimator, roles: Roles):
    """``estimator``, or, for a bare estimator or a Pipeline not starting with a ColumnTransformer
    on an all-numeric table, ``estimator`` behind a passthrough ColumnTransformer: the graph has one
    input per column, and skl2onnx hands a first step that is not a ColumnTransformer all of them,
    which a single-input converter refuses ("at most 1 input(s) is(are) supported")."""
    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else estimator
    if isinstance(first, ColumnTransformer) or roles.categorical or len(roles.numeric) < 2:
        return estimator
    empty = pd.DataFrame(np.zeros((1, len(roles.numeric)), np.float32), columns=roles.numeric)
    join = ColumnTransformer([("features", "passthrough", list(roles.numeric))]).fit(empty)
    return Pipeline([("inputs", join), ("model", estimator)])


def clone_fitted(pipeline: Pipeline) -> Pipeline:
    return copy_module.deepcopy(pipeline)


def check_opset(target_opset: int) -> None:
    """Refuse an opset the installed onnx or skl2onnx cannot write, naming the range that works
    (skl2onnx otherwise fails deep inside a converter, which reads as a converter problem)."""
    import skl2onnx

    highest = min(onnx.defs.onnx_opset_version(), skl2onnx.get_latest_tested_opset_version())
    if not MIN_OPSET <= target_opset <= highest:
        raise UserError(
            f"export.target_opset {target_opset} is outside what the installed onnx "
            f"{onnx.__version__} and skl2onnx {skl2onnx.__version__} support: use {MIN_OPSET} to {highest}"
        )


def final_estimator(estimator):
    """The estimator at the end of a (nested) Pipeline: the one whose output is the model's."""
    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator


def unregistered_steps(estimator) -> list[tuple[str, type]]:
    """(path, class) of every step of any estimator (a bare one, nested Pipelines,
    ColumnTransformers, ensembles) whose type skl2onnx has no converter for."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    return [
        (path, type(step))
        for path, step in support.steps(estimator)
        if not isinstance(step, support.STRUCTURAL) and type(step) not in sklearn_operator_name_map
    ]


def conversion_error(error: BaseException, estimator, converted) -> str:
    """One line for a skl2onnx failure: the step it failed on (if found; named as in
    ``estimator``, looked up in ``converted`` too, the copy that went to skl2onnx), its class,
    skl2onnx's own first line, and the way out."""
    text = str(error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    step = support.failing_step(error, estimator) or support.failing_step(error, converted)
    if step is None:
        return f"skl2onnx cannot convert this model ({type(error).__name__}: {detail}); {support.WAY_OUT}"
    return support.describe(*step, f"skl2onnx failed ({type(error).__name__}: {detail}); {support.WAY_OUT}")


def feature_schema(
    model: onnx.ModelProto,
    roles: Roles,
    pipeline: Pipeline,
    recorded: dict | None = None,
    version: int | None = None,
) -> dict:
    """onnx_features.json: what a client must send, input by input, in record order. ``recorded``:
    the training categories lineage.json records for a model that is not ours (else our encoder's).
    ``version``: 1 (one [n, 1] graph input per column) or 2 (packed: ``tensors``, and each input's
    ``tensor`` and ``index``); None reads it from the graph (v1 if its inputs are the columns)."""
    categories = recorded if recorded is not None else _training_categories(pipeline, roles)
    graph_inputs = [i.name for i in model.graph.input]
    if version is None:
        version = 1 if graph_inputs == roles.features else 2
    columns = packing.layout(roles.numeric, roles.categorical)
    inputs = []
    for position, name in enumerate(roles.features):
        role = columns[name].tensor  # the tensor of a role bears the role's name
        where = (
            {"tensor": columns[name].tensor, "index": columns[name].index}
            if version == 2
            else {"onnx_name": graph_inputs[position], "shape": [None, 1]}
        )
        entry = {"name": name, "role": role, "dtype": spec.ENCODING[role]["dtype"], **where}
        entry |= {"missing_allowed": True, "missing_value": spec.ENCODING[role]["missing_value"]}
        inputs.append({**entry, "categories": None if role == "numeric" else categories[name]})
    header = {"schema_version": version, "missing_field": spec.MISSING_FIELD}
    header |= {"extra_fields": spec.EXTRA_FIELDS, "encoding": spec.ENCODING}
    if version == 1:  # v1's key order, as v1 files have always been written
        return {**header, "inputs": [{key: entry[key] for key in V1_INPUT_KEYS} for entry in inputs]}
    return {**header, "tensors": tensors(columns), "inputs": inputs}


def tensors(columns: dict[str, packing.Column]) -> list[dict]:
    """Contract v2's ``tensors``: the packed graph inputs that hold at least one column."""
    return [
        {"onnx_name": tensor, "dtype": spec.ENCODING[tensor]["dtype"], "shape": [None, width], "role": tensor}
        for tensor, width in packing.widths(columns).items()
    ]


def _training_categories(pipeline: Pipeline, roles: Roles) -> dict[str, list[str]]:
    """The categories our categorical encoder learned, per column (an empty list for each column when
    the pipeline is not ours and train recorded none)."""
    if not roles.categorical:
        return {}
    try:
        encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"].named_steps["encode"]
    except (AttributeError, KeyError):
        return {name: [] for name in roles.categorical}
    return {
        name: [str(c) for c in cats]
        for name, cats in zip(roles.categorical, encoder.categories_, strict=True)
    }


def metadata(
    model: onnx.ModelProto,
    model_bytes: bytes,
    pipeline: Pipeline,
    lineage: dict,
    threshold: float,
    features_bytes: bytes,
) -> dict:
    """onnx_metadata.json: how to turn the model's output into a decision, and what built it.

    ``features_bytes`` is onnx_features.json as written: its sha256 ties the two files together.
    """
    # The positive class's column: 1 for every model train fits (on y == positive), the class
    # lineage.json names for a fitted model of yours ("yes", True or 1).
    column = positive_column(pipeline.classes_, lineage)
    labels = {0: lineage["target"]["negative_label"], 1: lineage["target"]["positive_label"]}
    return {
        "schema_version": spec.METADATA_VERSION,
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "features_file": FEATURES_FILE,
        "features_sha256": hashlib.sha256(features_bytes).hexdigest(),
        "source_model_sha256": lineage["model_sha256"],
        "family": lineage["chosen"]["family"],
        "threshold": threshold,
        "decision_rule": spec.DECISION_RULE,
        "decision_operator": spec.DECISION_OPERATOR,
        "decision_precision": spec.DECISION_PRECISION,
        "positive_label": labels[1],
        "negative_label": labels[0],
        "class_order": [labels[int(i == column)] for i in range(len(pipeline.classes_))],
        "probability_output": spec.PROBABILITY_OUTPUT,
        "positive_class_index": column,
        "outputs": outputs(model),
        "opsets": opsets(model),
        "ir_version": model.ir_version,
        # The u8s8 integer-kernel family of the CPU that builds and verifies the artifacts (export,
        # quantize and parity run on one machine): a client serving the INT8 file on another
        # family says so once (onnxship.contract.cpu.int8_family_warning).
        "kernel_family": cpu.family(),
        "versions": versions(
            *("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "protobuf", "numpy"),
            *_converter_packages(lineage),
        ),
    }


def _converter_packages(lineage: dict) -> tuple[str, ...]:
    """LightGBM or XGBoost and onnxmltools (whose converter wrote the trees) for those families."""
    library = boosters.packages(lineage["chosen"]["family"])
    return (*library, "onnxmltools") if library else ()


def outputs(model: onnx.ModelProto) -> list[dict]:
    """Every graph output with its type and what it is for: the probabilities the contract's rule
    reads, and ``label``, which applies that rule at the tuned threshold (onnxship.convert.decision)."""
    uses = {spec.PROBABILITY_OUTPUT: "probabilities", decision.LABEL_OUTPUT: "decision"}
    described = []
    for output in model.graph.output:
        tensor = output.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        use = uses.get(output.name, "ignore")
        described.append({"name": output.name, "dtype": dtype, "shape": shape, "use": use})
    return described


def opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
