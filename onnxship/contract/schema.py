"""The contract files' JSON Schemas (``schemas/*.json``, draft 2020-12) and validation against them.

Every client validates onnx_features.json and onnx_metadata.json against these schemas before it
reads a field: the Python loader here (jsonschema), the JavaScript clients with ajv's compiled code
(clients/node/schemas.mjs). Both turn the first violation into the same one-line message (``refusal``
here, ``schemaRefusal`` in clients/node/contract.mjs): the file, the field's path, what it must be,
and how to fix it. The export stage validates what it writes with the same schemas.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from onnxship.core.errors import UserError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
NAMES = ("onnx_features", "onnx_metadata")
# The versions of each file this client reads; onnx_metadata.json keeps its own version.
VERSIONS = {"onnx_features": (1, 2), "onnx_metadata": (1,)}
FIX = "re-run the export stage (dvc repro)"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def path(name: str, version: int) -> Path:
    """The schema file of contract file ``name`` (e.g. "onnx_features") at ``version``."""
    return SCHEMA_DIR / f"{name}.v{version}.json"


@cache
def load(name: str, version: int) -> dict:
    return json.loads(path(name, version).read_text(encoding="utf-8"))


def _finite_number(_checker: object, instance: object) -> bool:
    # As ajv reads "number": 1e400 parses to infinity, which is no JSON number.
    if isinstance(instance, bool) or not isinstance(instance, int | float):
        return False
    return isinstance(instance, int) or math.isfinite(instance)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_number),
)


@cache
def _validator(name: str, version: int) -> jsonschema.protocols.Validator:
    # "format" is an assertion here, as in ajv: number_pattern must compile as a regex.
    return _Validator(load(name, version), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class Violation:
    """One way an instance breaks a schema: where, which keyword, and the line that says so."""

    path: tuple  # keys and indices from the document's root
    keyword: str
    text: str  # "<path> ...: <what it must be>", without the file's name

    @property
    def where(self) -> str:
        return json_path(self.path)


def json_path(parts: Sequence[str | int]) -> str:
    """``$.inputs[0].dtype``: the form both clients print (clients/node/contract.mjs ``jsonPath``)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def shown(value: object, limit: int = 60) -> str:
    """A value as compact JSON, cut at ``limit`` characters (JavaScript's ``shown``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rule(keyword: str, expected: Any, parent: dict) -> str:
    """What a value must be, from the keyword it breaks (the same words as clients/node/checks.mjs)."""
    title = parent.get("title") if isinstance(parent, dict) else None
    types = " or ".join(expected) if keyword == "type" and isinstance(expected, list) else expected
    least = "must not be empty" if expected == 1 else f"must have at least {expected} characters"
    words: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be of type {types}",
        "const": lambda: f"must be {shown(expected)}",
        "enum": lambda: f"must be one of [{', '.join(shown(v) for v in expected)}]",
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "minLength": lambda: least,
        "maxLength": lambda: f"must have at most {expected} characters",
        "minItems": lambda: f"must have at least {expected} items",
        "maxItems": lambda: f"must have at most {expected} items",
        "uniqueItems": lambda: "must not repeat an item",
        "pattern": lambda: f"must be {title}" if title else f"must match {expected}",
        "format": lambda: f"must be {title}" if title else f"must be a valid {expected}",
    }
    if keyword in words:
        return words[keyword]()
    return f"breaks the schema's {keyword} rule {shown(expected)}"


def _violation(error: jsonschema.ValidationError) -> Violation:
    parts = tuple(error.absolute_path)
    keyword, instance = error.validator, error.instance
    if keyword == "required":
        missing = next(name for name in error.validator_value if name not in instance)
        return Violation((*parts, missing), keyword, f"{json_path((*parts, missing))} is missing")
    if keyword == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = next(name for name in instance if name not in allowed)
        return Violation((*parts, extra), keyword, f"{json_path((*parts, extra))} is not a contract field")
    what = rule(keyword, error.validator_value, error.schema)
    text = f"{json_path(parts)} is {shown(instance)}, but it {what}"
    return Violation(parts, str(keyword), text)


# Which of several violations is told: the one nearest the root, then the first path in text order,
# then the first keyword of this list; clients/node/checks.mjs picks with the same key among ajv's errors.
RANK = ("required", "additionalProperties", "type", "const", "enum", "minimum", "maximum", "minLength",
        "maxLength", "minItems", "maxItems", "uniqueItems", "pattern", "format")  # fmt: skip


def _order(error: jsonschema.ValidationError) -> tuple:
    parts = tuple(error.absolute_path)
    keyword = str(error.validator)
    return len(parts), json_path(parts), RANK.index(keyword) if keyword in RANK else len(RANK)


def violations(instance: object, name: str, version: int) -> list[Violation]:
    """Every way ``instance`` breaks the schema, the one to tell first."""
    return [_violation(e) for e in sorted(_validator(name, version).iter_errors(instance), key=_order)]


def refusal(file: str, version: int, violation: Violation) -> str:
    """The one line a client prints for a contract file that breaks its schema."""
    name = file.rsplit("/", 1)[-1].removesuffix(".json")
    return f"{file} does not match {name}.v{version}.json: {violation.text}; {FIX}"


# What the schemas ask of an input's "name" (and v1's "onnx_name") and "index": any non-empty string,
# any integer from 0. ``_condensed`` relies on it; tests/test_schema.py checks the schemas still say so.
TEXT_RULES = {"type": "string", "minLength": 1}
INDEX_RULES = {"type": "integer", "minimum": 0}


def _condensed(instance: object) -> object:
    """``instance`` with one entry per kind of input: entries that differ only in valid names and a
    valid index are valid or invalid together, so a wide table's thousands of identical numeric
    entries are validated once (jsonschema takes about 0.2 ms per entry)."""
    if not isinstance(instance, dict) or not isinstance(instance.get("inputs"), list):
        return instance
    kinds: dict[str, object] = {}
    for entry in instance["inputs"]:
        key = json.dumps(entry, sort_keys=True, allow_nan=True)
        if isinstance(entry, dict):
            rest, marks = dict(entry), []
            for field in ("name", "onnx_name", "index"):
                if field in rest:
                    value = rest.pop(field)
                    seen = "valid" if _plain(field, value) else json.dumps(value, allow_nan=True)
                    marks.append((field, seen))
            key = json.dumps(rest, sort_keys=True, allow_nan=True) + repr(marks)
        kinds.setdefault(key, entry)
    return {**instance, "inputs": list(kinds.values())}


def _plain(field: str, value: object) -> bool:
    """A value of ``field`` that TEXT_RULES or INDEX_RULES accept."""
    if field == "index":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, str) and value != ""


def check(instance: dict, file: str, version: int) -> None:
    """Raise a UserError with the first violation if ``instance`` breaks its schema (``file``: the
    path shown, ending in onnx_features.json or onnx_metadata.json)."""
    name = file.rsplit("/", 1)[-1].removesuffix(".json")
    if _validator(name, version).is_valid(_condensed(instance)):
        return
    found = violations(instance, name, version)  # the whole file, for the violation to tell
    if found:
        raise UserError(refusal(file, version, found[0]))
