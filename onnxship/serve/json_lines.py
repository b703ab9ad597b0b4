"""Reading one JSON-lines record, by the rules both scoring clients follow (and the HTTP server's
body): strict JSON, no key twice, no NaN/Infinity, bounded nesting, no lone surrogates.

Standard library only, like the rest of ``serve/``.
"""

from __future__ import annotations

import json
import re
from typing import Any

JSON_SPACE = " \t\r\n"
MAX_JSON_DEPTH = 100  # a record is flat; deeper nesting is refused before the parser recurses into it
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def json_record(text: str) -> Any:
    """One JSON-lines line parsed, as the Node client parses it; ValueError says why it is refused.

    Refused: invalid JSON, a key given twice, NaN/Infinity (not JSON), nesting deeper than
    MAX_JSON_DEPTH (Python's parser would hit its recursion limit), and a string holding a lone
    surrogate escape such as "\\ud800" (not text: it has no UTF-8 form for the model).
    """
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        record = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from None
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        # An integer of thousands of digits: Python refuses to convert it; JavaScript reads it as
        # Infinity. Read it as a float too (infinite), so the encoder refuses the field alike.
        record = json.loads(text, object_pairs_hook=unique_keys, parse_constant=no_constant, parse_int=float)
    refuse_lone_surrogates(text, record)
    return record


def refuse_lone_surrogates(text: str, document: Any) -> None:
    """ValueError if ``document`` (parsed from ``text``) holds a string with a lone surrogate escape
    such as "\\ud800": not text, it has no UTF-8 form for the model (the HTTP body's rule too)."""
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(exc.object[exc.start])
            raise ValueError(f"a lone surrogate \\u{code:04x} is not text") from None


def json_depth(text: str) -> int:
    """How deeply the brackets of a JSON text nest, outside its strings."""
    depth = deepest = 0
    for c in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object, refusing a key given twice (json.loads would keep the last value silently)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {twice!r}")
    return record


def no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON: write null for a missing value")
