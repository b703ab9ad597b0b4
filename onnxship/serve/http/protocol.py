"""MLflow's scoring protocol, read and written: request bodies -> records, scores -> the answer.

A request body is ``{"dataframe_records": [{field: value, ...}, ...]}`` or
``{"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}`` (``index`` optional,
checked and otherwise ignored). The answer is ``{"predictions": [{"probability", "decision",
"label"}, ...]}`` in request order. Values are read as the JSON-lines scorer reads a line (a key given
twice, NaN or Infinity refused), so the same record gets the same answer from the CLI and over HTTP.
Standard library only: the encoder and the model are the scorer's (``onnxship.serve.scorer``).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from onnxship.contract.encode import InvalidRecord
from onnxship.serve.json_lines import no_constant, refuse_lone_surrogates, unique_keys

FORMATS = ("dataframe_records", "dataframe_split")


class HttpError(Exception):
    """A request refused with ``status`` and a JSON body ``{"error_code", "message", ...}``."""

    CODES: ClassVar[dict[int, str]] = {
        400: "BAD_REQUEST",
        404: "ENDPOINT_NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "REQUEST_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
        422: "INVALID_RECORD",
        500: "INTERNAL_ERROR",
        503: "UNAVAILABLE",
    }

    def __init__(self, status: int, message: str, headers: dict | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers, extra

    def body(self) -> dict:
        return {"error_code": self.CODES.get(self.status, "ERROR"), "message": self.message, **self.extra}


def invalid(index: int, field: str | None, reason: str) -> HttpError:
    """422 for the record at ``index`` (0-based, its place in the request), naming the field."""
    where = f"record {index}" + (f", field '{field}'" if field else "")
    return HttpError(422, f"{where}: {reason}", index=index, field=field, reason=reason)


def from_invalid_record(exc: InvalidRecord) -> HttpError:
    """The encoder's InvalidRecord (rows numbered from 1) as a 422 naming the record's index."""
    return invalid(exc.row - 1, exc.column, exc.reason)


def parse_body(body: bytes) -> Any:
    """The request's JSON document, read as the JSON-lines scorer reads a line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "the body is not UTF-8 text") from None
    try:
        document = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant)
        refuse_lone_surrogates(text, document)
        return document
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise HttpError(400, f"the body is not valid JSON ({exc.msg} at {where})") from None
    except ValueError as exc:  # a duplicate key, NaN/Infinity, a lone surrogate
        raise HttpError(400, f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise HttpError(400, "the body is not valid JSON (nested too deeply)") from None


def records(document: Any) -> list:
    """The records a request carries, in order: dicts, or anything else for the encoder to refuse
    (a record that is not an object is an invalid record, 422, as a JSON line that is not one is)."""
    if not isinstance(document, dict):
        raise HttpError(400, f"the body must be a JSON object with one of {', '.join(FORMATS)}")
    given = [key for key in document if key in FORMATS]
    others = sorted(key for key in document if key not in FORMATS)
    if len(given) != 1 or others:
        found = f"; found {', '.join(sorted(document)) or 'no key'}" if document else ""
        raise HttpError(400, f"the body must have exactly one key, {' or '.join(FORMATS)}{found}")
    value = document[given[0]]
    if given[0] == "dataframe_records":
        if not isinstance(value, list):
            raise HttpError(400, "dataframe_records must be a list of records {field: value}")
        return value
    return split_records(value)


def split_records(split: Any) -> list:
    """``{"columns": [...], "data": [[...], ...], "index": [...]}`` as records; a row whose length is
    not the number of columns is an invalid record (as a ragged CSV row is)."""
    if not isinstance(split, dict):
        raise HttpError(400, 'dataframe_split must be an object {"columns": [...], "data": [[...], ...]}')
    unknown = sorted(set(split) - {"columns", "data", "index"})
    if unknown:
        raise HttpError(400, f"dataframe_split has unknown keys {unknown}: only columns, data and index")
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise HttpError(400, "dataframe_split.columns must be a list of field names (strings)")
    if len(set(columns)) != len(columns):
        twice = sorted({c for c in columns if columns.count(c) > 1})
        raise HttpError(400, f"dataframe_split.columns names {twice} more than once")
    if not isinstance(data, list):
        raise HttpError(400, "dataframe_split.data must be a list of rows (lists of values)")
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise HttpError(400, "dataframe_split.index, when given, must be a list as long as data")
    found = []
    for number, row in enumerate(data):
        if not isinstance(row, list):
            raise invalid(number, None, f"expected a row (a list of values), got {type(row).__name__}")
        if len(row) != len(columns):
            raise invalid(number, None, f"has {len(row)} values but columns names {len(columns)}")
        found.append(dict(zip(columns, row, strict=True)))
    return found


def predictions(probability: list[float], decision: list[bool], labels: tuple[str, str]) -> list[dict]:
    """One ``{"probability", "decision", "label"}`` per record; ``labels`` is (negative, positive)."""
    return [
        {"probability": p, "decision": int(d), "label": labels[d]}
        for p, d in zip(probability, decision, strict=True)
    ]


def dumps(obj: Any) -> bytes:
    """Compact JSON; a probability is written as the shortest text that reads back the same float."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
