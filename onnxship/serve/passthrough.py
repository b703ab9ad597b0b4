"""Input fields carried through to the scores: ``--id-column`` and ``--keep``.

The same rules in every scorer (this CLI, the Node client's clients/node/contract.mjs, Spark's
``onnxship.serve.spark``); docs/serving.md states them once:

- ``--id-column NAME``: one field that names each row; it is copied to the output, and a row whose
  id is empty (an empty CSV cell, JSON null) is invalid ("every row needs an id").
- ``--keep a,b``: comma-separated fields to copy (spaces around names are dropped, empty names
  ignored; given twice, the last one counts). With ``--id-column``, the id comes first and a name
  given in both is copied once.
- A named field the input lacks is an error: a CSV header without it is refused before any row is
  scored; a JSON record without it is an invalid row (``--skip-invalid`` leaves it out).
- A field may also be one the model reads. A name the output uses itself (``row``, ``probability``,
  ``decision``, ``label``) is refused.
- Values are copied as text, verbatim: a CSV cell as it is, a JSON string's text, a JSON number as
  written in the line (``1.50`` stays ``1.50``), ``true``/``false``, and null as the empty string
  (the contract's missing value). A JSON object or array is refused.

Without either option nothing is copied (the output stays ``row,probability,decision,label``);
Spark, which has no row numbers, keeps every input column by default instead.
Standard library only, like the rest of ``serve/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from onnxship.contract.encode import InvalidRecord
from onnxship.core.errors import UserError

OUTPUT_FIELDS = ("row", "probability", "decision", "label")
_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def keep_list(text: str | None) -> tuple[str, ...]:
    """``--keep a, b`` as names: split on commas, spaces around names dropped, empty names ignored."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


@dataclass(frozen=True)
class Passthrough:
    """The fields a scoring run copies from each input record to its score."""

    id_column: str | None = None
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in self.fields:
            if name in OUTPUT_FIELDS:
                raise UserError(
                    f"column '{name}' would clash with the output's {name}: rename it in the input"
                )

    @property
    def fields(self) -> tuple[str, ...]:
        """The copied fields in output order: the id first, each name once."""
        return tuple(dict.fromkeys([*([self.id_column] if self.id_column else []), *self.keep]))

    def check_header(self, source: object, header: Sequence[str]) -> None:
        """Refuse a CSV header that lacks a field to copy (before any row is scored)."""
        for name in self.fields:
            if name not in header:
                raise UserError(f"{source} has no column '{name}' to keep: choose among {sorted(header)}")

    def values(self, record: Mapping[str, Any], row: int, line: int | None = None) -> list[str]:
        """The record's copied fields as text; InvalidRecord for a missing field or an empty id.

        ``record`` is a CSV row (strings) or a JSON object; a JSON-lines reader gives a JsonRecord,
        whose line text supplies numbers as written."""
        texts, sources = [], None
        for name in self.fields:
            if name not in record:
                raise InvalidRecord(row, name, "the field is missing", line)
            value = record[name]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and sources is None and isinstance(record, JsonRecord):
                sources = member_texts(record.text)
            text = sources[name] if number and sources is not None else _text(value)
            if text is None:
                kind = "an object" if isinstance(value, dict) else "an array"
                reason = f"expected text, a number, true, false or null to copy, got {kind}"
                raise InvalidRecord(row, name, reason, line)
            if name == self.id_column and text == "":
                reason = f"the id column '{name}' is empty: every row needs an id"
                raise InvalidRecord(row, None, reason, line)
            texts.append(text)
        return texts


class JsonRecord(dict):
    """A JSON-lines record that remembers its line's text (for numbers copied as written)."""

    __slots__ = ("text",)


def _text(value: Any) -> str | None:
    """A value as text (None for an object or array); numbers of a JsonRecord come from its line."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return None


def member_texts(text: str) -> dict[str, str]:
    """{key: the value's source text} for each member of the JSON object ``text`` (valid JSON)."""
    found: dict[str, str] = {}
    i = _skip(text, 0) + 1  # past "{"
    while True:
        i = _skip(text, i)
        if text[i] == "}":
            return found
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, _skip(text, i) + 1)  # past ":"
        _, end = _DECODER.raw_decode(text, i)
        found[key] = text[i:end]
        i = _skip(text, end)
        if text[i] == ",":
            i += 1


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i
