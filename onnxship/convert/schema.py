"""The export stage's check of what it is about to write against the contract's JSON Schemas.

The schemas and their validation are the clients' own (``onnxship.contract.schema``, used by every
client when it loads a contract): the export stage refuses to write a contract file that a client
would refuse, so a client never receives one that breaks its documented shape.
"""

from __future__ import annotations

from pathlib import Path

from onnxship.contract import schema
from onnxship.core.errors import UserError

NAMES = schema.NAMES


def _version(instance: object, name: str) -> int:
    """The schema version ``instance`` claims, if this code knows it; else the newest."""
    known = schema.VERSIONS[name]
    claimed = instance.get("schema_version") if isinstance(instance, dict) else None
    return claimed if claimed in known and not isinstance(claimed, bool) else known[-1]


def path(name: str, version: int = 1) -> Path:
    return schema.path(name, version)


def load(name: str, version: int = 1) -> dict:
    return schema.load(name, version)


def errors(instance: object, name: str) -> list[str]:
    """Every way ``instance`` breaks its schema, one line each, most relevant first."""
    return [v.text for v in schema.violations(instance, name, _version(instance, name))]


def validate(instance: object, name: str) -> None:
    """Raise a UserError naming the first violation if ``instance`` does not match its schema."""
    version = _version(instance, name)
    problems = errors(instance, name)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(
            f"{name}.json does not match {schema.path(name, version).name}: {problems[0]}{more}; "
            "nothing was written: fix the export code or the inputs it read (lineage.json)"
        )
