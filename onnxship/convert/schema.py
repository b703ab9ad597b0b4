"""The JSON Schemas (draft 2020-12) of the ONNX contract files, and validation against them.

The export stage validates what it is about to write, so a client never receives a contract file
that breaks its documented shape. The schemas live in ``schemas/`` at the repository root, one file
per contract file and version (``onnx_features.v1.json``, ``onnx_features.v2.json``,
``onnx_metadata.v1.json``): a file is checked against the schema of its own ``schema_version``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

from onnxship.contract.spec import CONTRACT_VERSION, METADATA_VERSION
from onnxship.core.errors import UserError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
NAMES = ("onnx_features", "onnx_metadata")
# The version each contract file is written at by default.
VERSIONS = {"onnx_features": CONTRACT_VERSION, "onnx_metadata": METADATA_VERSION}


def path(name: str, version: int | None = None) -> Path:
    """The schema file of contract file ``name`` (e.g. "onnx_features") at ``version`` (default: the
    version export writes)."""
    return SCHEMA_DIR / f"{name}.v{version or VERSIONS[name]}.json"


@cache
def load(name: str, version: int | None = None) -> dict:
    return json.loads(path(name, version).read_text(encoding="utf-8"))


def version_of(instance: object, name: str) -> int:
    """The schema version to check ``instance`` against: its own ``schema_version`` when a schema of
    that version exists, else the default (whose ``const`` then names the mismatch)."""
    found = instance.get("schema_version") if isinstance(instance, dict) else None
    if isinstance(found, int) and not isinstance(found, bool) and path(name, found).is_file():
        return found
    return VERSIONS[name]


def errors(instance: object, name: str) -> list[str]:
    """Every way ``instance`` breaks the schema, as ``<json path>: <message>``, most relevant first."""
    schema = load(name, version_of(instance, name))
    found = list(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    if not found:
        return []
    best = jsonschema.exceptions.best_match(found)
    rest = [error for error in found if error is not best]
    return [f"{error.json_path}: {error.message}" for error in [best, *rest]]


def validate(instance: object, name: str) -> None:
    """Raise a UserError naming the first violation if ``instance`` does not match the schema."""
    problems = errors(instance, name)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(
            f"{name}.json does not match {path(name, version_of(instance, name)).name}: {problems[0]}{more}; "
            "nothing was written: fix the export code or the inputs it read (lineage.json)"
        )
