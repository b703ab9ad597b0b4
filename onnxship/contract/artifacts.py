"""Loading the three contract files with every check a client makes before it scores anything.

A client refuses: a file that is not JSON (duplicate keys, NaN and Infinity included) or not an
object, or has a ``schema_version`` it does not read; a file that breaks its JSON Schema
(``onnxship.contract.schema``: every field's type, range and allowed values); an
onnx_features.json whose sha256 is not the one in onnx_metadata.json (files of two exports); a
model.onnx whose sha256 is not the metadata's; an ONNX Runtime of another major version (policy);
fields that do not fit together (``onnxship.contract.checks``); a graph whose inputs or probability
output are not the contract's (``check_graph``, once a session exists). The Python scorer, the
parity gate, the benchmark, the HTTP server and the Spark job all load through ``load``/``from_bytes``;
the JavaScript clients make the same checks in clients/node/contract.mjs and are tested on the same
cases. docs/contract.md says what the hashes guard against and what they do not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from onnxship.contract import checks, schema
from onnxship.contract.runtime import check_runtime
from onnxship.core.errors import UserError
from onnxship.core.paths import FEATURES_FILE, METADATA_FILE

MAX_DEPTH = 500  # deeper JSON is refused by both clients (clients/node/contract.mjs MAX_DEPTH)


@dataclass(frozen=True)
class Contract:
    """The parsed contract files and the model bytes they describe, checked."""

    features: dict
    metadata: dict
    model: bytes
    source: str  # where it came from, for messages


def _parse(name: str, data: bytes, source: str) -> tuple[dict, int]:
    """A contract file's bytes -> (its object, its schema version), or a UserError."""
    try:
        # Strict UTF-8 first: json.loads(bytes) would also read UTF-16 and UTF-32, which JavaScript's
        # clients refuse; a byte order mark stays in the text, and JSON refuses it (as JSON.parse does).
        text = data.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"{source}/{name} is not valid JSON ({_first_line(exc)}); {schema.FIX}") from None
    except ValueError as exc:  # a duplicate key, NaN or Infinity
        raise UserError(f"{source}/{name} is not valid JSON ({exc}); {schema.FIX}") from None
    if _deeper_than(obj, MAX_DEPTH):
        raise UserError(
            f"{source}/{name} is not valid JSON (nested deeper than {MAX_DEPTH} levels); {schema.FIX}"
        )
    if not isinstance(obj, dict):
        raise UserError(f"{source}/{name} is not a JSON object; {schema.FIX}")
    version = obj.get("schema_version")
    known = schema.VERSIONS[name.removesuffix(".json")]
    if isinstance(version, bool) or version not in known:
        readable = " and ".join(str(v) for v in known)
        raise UserError(
            f"{source}/{name} has schema_version {schema.shown(version)}; this client reads "
            f"{name} version {readable}: use the onnxship that exported the model"
        )
    schema.check(obj, f"{source}/{name}", version)
    return obj, version


def _deeper_than(obj: object, limit: int) -> bool:
    """Whether ``obj`` nests more than ``limit`` arrays or objects (as clients/node/contract.mjs counts)."""
    level, frontier = 1, [obj] if isinstance(obj, dict | list) else []
    while frontier:
        if level > limit:
            return True
        frontier = [
            child
            for node in frontier
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        level += 1
    return False


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _no_constant(name: str) -> None:
    # Python's json reads NaN and Infinity, which are not JSON (and which JavaScript's JSON.parse refuses).
    raise ValueError(f"{name} is not JSON")


def from_bytes(
    features_bytes: bytes,
    metadata_bytes: bytes,
    model_bytes: bytes,
    version_check: str = "strict",
    source: str = "artifacts",
    verify_model: bool = True,
) -> Contract:
    """Parse and check the contract files and the model bytes: each file against its JSON Schema,
    then the hashes, then the rules that tie fields together (``checks``). The graph itself is
    checked against the contract when a session is made (``check_graph``).

    ``verify_model=False`` accepts a model whose sha256 is not the metadata's: another graph with the
    same inputs and outputs (the INT8 file), which the metadata does not describe.
    """
    features, _ = _parse(FEATURES_FILE, features_bytes, source)
    metadata, _ = _parse(METADATA_FILE, metadata_bytes, source)
    return _checked(features, metadata, (features_bytes, model_bytes), version_check, source, verify_model)


def _checked(
    features: dict,
    metadata: dict,
    raw: tuple[bytes, bytes],
    version_check: str,
    source: str,
    verify_model: bool,
) -> Contract:
    """The checks after each file's schema, in the JavaScript clients' order too."""
    features_bytes, model_bytes = raw
    _check_hashes(metadata, features_bytes, model_bytes, source, verify_model)
    check_runtime(metadata["versions"]["onnxruntime"], policy=version_check)
    for name, problem in (
        (FEATURES_FILE, checks.features_problem(features)),
        (METADATA_FILE, checks.metadata_problem(metadata)),
    ):
        if problem:
            raise UserError(checks.refusal(f"{source}/{name}", problem))
    return Contract(features=features, metadata=metadata, model=model_bytes, source=source)


def check_graph(contract: Contract, session: Any) -> None:
    """The session's graph has the inputs the contract describes and the probability output it
    names (float32, one column per class): else a UserError."""
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    problem = checks.graph_problem(contract.features, contract.metadata, inputs, outputs)
    if problem:
        raise UserError(
            f"{contract.source}: {problem}: copy model.onnx and its JSON files from the same export"
        )


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
    features, _ = _parse(FEATURES_FILE, raw[FEATURES_FILE], str(folder))
    metadata, _ = _parse(METADATA_FILE, raw[METADATA_FILE], str(folder))
    model_path = folder / (model_file or metadata["model_file"])
    if not model_path.is_file():
        raise UserError(f"{model_path} not found: copy it with the JSON files it belongs to")
    # The very bytes the session will load are hashed, so the file cannot change in between.
    raw_bytes = (raw[FEATURES_FILE], model_path.read_bytes())
    return _checked(features, metadata, raw_bytes, version_check, str(folder), model_file is None)


def with_model(contract: Contract, model: bytes) -> Contract:
    """The same contract around other model bytes (an INT8 file, or a faulty model in the fault suite)."""
    return replace(contract, model=model)
