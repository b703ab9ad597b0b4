"""Loading the three contract files with every check a client makes before it scores anything.

A client refuses: a JSON file that is not an object or has another ``schema_version``; an
onnx_features.json whose sha256 is not the one in onnx_metadata.json (files of two exports); a
model.onnx whose sha256 is not the metadata's; an ONNX Runtime of another major version (policy);
a decision rule or missing-value rule it does not implement. The Python scorer, the parity gate,
the benchmark and the Spark job all load through ``load``/``from_bytes``; the Node client follows
the same rules (clients/node/score.mjs) and is tested on the same cases.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from onnxship.contract import spec
from onnxship.contract.layout import Layout
from onnxship.contract.runtime import check_runtime
from onnxship.core.errors import UserError
from onnxship.core.paths import FEATURES_FILE, METADATA_FILE


@dataclass(frozen=True)
class Contract:
    """The parsed contract files and the model bytes they describe, checked."""

    features: dict
    metadata: dict
    model: bytes
    source: str  # where it came from, for messages


def _parse(name: str, data: bytes, source: str) -> dict:
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{source}/{name} is not valid JSON ({exc}); re-run the export stage (dvc repro)"
        ) from None
    except ValueError as exc:  # a duplicate key
        raise UserError(f"{source}/{name}: {exc}; re-run the export stage (dvc repro)") from None
    if not isinstance(obj, dict):
        raise UserError(f"{source}/{name} is not a JSON object; re-run the export stage (dvc repro)")
    version = obj.get("schema_version")
    readable = spec.FEATURES_VERSIONS if name == FEATURES_FILE else (spec.METADATA_VERSION,)
    if type(version) is not int or version not in readable:
        said = (
            f"versions {' and '.join(map(str, readable))}" if len(readable) > 1 else f"version {readable[0]}"
        )
        raise UserError(
            f"{source}/{name} has schema_version {version!r}; this client reads contract {said}: "
            "use the onnxship that exported the model"
        )
    return obj


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def from_bytes(
    features_bytes: bytes,
    metadata_bytes: bytes,
    model_bytes: bytes,
    version_check: str = "strict",
    source: str = "artifacts",
    verify_model: bool = True,
) -> Contract:
    """Parse and check the contract files and the model bytes.

    ``verify_model=False`` accepts a model whose sha256 is not the metadata's: another graph with the
    same inputs and outputs (the INT8 file), which the metadata does not describe.
    """
    features = _parse(FEATURES_FILE, features_bytes, source)
    metadata = _parse(METADATA_FILE, metadata_bytes, source)
    try:
        _check_hashes(metadata, features_bytes, model_bytes, source, verify_model)
        _check_rules(features, metadata, version_check)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        # A contract file that parses but lacks what it must say: not a bug of the caller's.
        raise UserError(
            f"{source}/{FEATURES_FILE} or {METADATA_FILE} is incomplete ({type(exc).__name__}: {exc}); "
            "re-run the export stage (dvc repro)"
        ) from None
    return Contract(features=features, metadata=metadata, model=model_bytes, source=source)


def _check_hashes(
    metadata: dict, features_bytes: bytes, model_bytes: bytes, source: str, verify_model: bool
) -> None:
    """The features file and the model are the very ones the metadata describes."""
    if hashlib.sha256(features_bytes).hexdigest() != metadata["features_sha256"]:
        raise UserError(
            f"{source}/{FEATURES_FILE} does not match the sha256 in {METADATA_FILE}: the two files come "
            "from different exports; copy both from the same export"
        )
    actual = hashlib.sha256(model_bytes).hexdigest()
    if verify_model and actual != metadata["model_sha256"]:
        raise UserError(
            f"{source}/{metadata['model_file']} has sha256 {actual[:12]}..., but {METADATA_FILE} records "
            f"{metadata['model_sha256'][:12]}...: refusing a model the contract does not describe; "
            "copy model.onnx and its JSON files from the same export"
        )


def _check_rules(features: dict, metadata: dict, version_check: str) -> None:
    """The runtime, the decision rule and the encoding are ones this client implements."""
    check_runtime(metadata["versions"]["onnxruntime"], policy=version_check)
    rule = (metadata["decision_operator"], metadata["decision_precision"])
    if rule != (spec.DECISION_OPERATOR, spec.DECISION_PRECISION):
        raise UserError(f"{METADATA_FILE} states a decision rule this client does not implement: {rule}")
    threshold = metadata["threshold"]
    if (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
        or not 0 <= threshold <= 1  # a probability's threshold: outside [0, 1] every row gets one verdict
    ):
        raise UserError(
            f"{METADATA_FILE} has threshold {threshold!r}: it must be a finite number from 0 to 1"
        )
    Layout(features)  # v2: every input's tensor and index are consistent
    categorical = features["encoding"]["categorical"]
    if categorical["missing_tokens"] != [categorical["missing_value"]]:
        raise UserError(f"{FEATURES_FILE} states categorical missing tokens this client does not know")
    index = metadata["positive_class_index"]
    if not isinstance(index, int) or not 0 <= index < len(metadata["class_order"]):
        raise UserError(f"{METADATA_FILE} has positive_class_index {index!r} outside class_order")


def load(
    folder: str | Path,
    version_check: str = "strict",
    model_file: str | None = None,
) -> Contract:
    """Read and check the contract in ``folder``.

    ``model_file`` scores another graph with the same inputs and outputs (e.g. the INT8 file) in
    place of the metadata's ``model_file``; the metadata's sha256 describes only that one, so the
    model hash check is skipped for it.
    """
    folder = Path(folder)
    raw = {}
    for name in (FEATURES_FILE, METADATA_FILE):
        path = folder / name
        if not path.is_file():
            raise UserError(f"{path} not found: point --artifacts at the folder the export stage wrote")
        raw[name] = path.read_bytes()
    metadata = _parse(METADATA_FILE, raw[METADATA_FILE], str(folder))
    model_path = folder / (model_file or str(metadata.get("model_file", "")))
    if not model_path.is_file():
        raise UserError(f"{model_path} not found: copy it with the JSON files it belongs to")
    # The very bytes the session will load are hashed, so the file cannot change in between.
    return from_bytes(
        raw[FEATURES_FILE],
        raw[METADATA_FILE],
        model_path.read_bytes(),
        version_check,
        str(folder),
        verify_model=model_file is None,
    )


def with_model(contract: Contract, model: bytes) -> Contract:
    """The same contract around other model bytes (an INT8 file, or a faulty model in the fault suite)."""
    return replace(contract, model=model)
