"""Write docs/params.md, every knob of params.yaml, from the schema (onnxship/core/params.py and
sections.py), dvc.yaml (which stages read a key) and params.yaml (which keys it shows).

    python -m tools.params_doc

tests/test_params.py checks that the file is up to date, so every knob is listed as the schema has it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel
from ruamel.yaml import YAML

from onnxship.core.params import Params

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "params.md"
REQUIRED = object()

HEADER = """# Every knob of params.yaml

Generated from the schema (`onnxship/core/sections.py`: data and train; `onnxship/core/params.py`: the
later stages and the rules that span sections) by `python -m tools.params_doc`; `tests/test_params.py`
checks this file is up to date.

Two tiers:
- **params.yaml shows what you are likely to change** ("in params.yaml: yes" below), each with a comment.
- **Every other knob keeps the default listed here.** To change one, add it to params.yaml under its own
  section, e.g. to weigh CV noise more loosely:

  ```yaml
  train:
    # ... the keys already there ...
    selection:
      noise_sigmas: 2.0
  ```

  dvc.yaml lists, per stage, the sections (or keys) it reads, so DVC re-runs exactly the stages that
  read the knob you set (the "read by" column), and what depends on their outputs. DVC refuses a
  key listed in dvc.yaml that params.yaml does not give, so a key one stage reads from another
  stage's section (`parity.max_edge_rows`, `parity.tolerances.int8`, read by quantize) stays in
  params.yaml.

Every stage validates the whole file before any work: an unknown key, a wrong type or a value out of
range gets one line naming the key (`error: params.yaml: ...`) and exit 2. Every number is finite
(YAML's `.inf` and `.nan` are refused wherever a number goes). Rules that span keys:
- `recommend.serving_batch_size` must be one of `benchmark.batch_sizes` (recommend compares the
  backends at that size, which only the benchmark measures).
- `train.screen.rows` (when not null) is at least 2 x `train.cv_folds`: the screen cross-validates a
  stratified sample, and each class needs a row in every fold. Rules that need the data (the smaller
  class against the folds, the test split, the screen's sample) are checked when train has read the
  file, before any model is fitted.

`null` is YAML's "none"; lists are written `[a, b]`. params.yaml is read as YAML 1.2, as DVC reads it.
"""


def schema_text(schema: dict) -> str:
    """A JSON Schema fragment as a short phrase: `integer > 0 or null`, `one of dynamic, static`."""
    if "anyOf" in schema:
        return " or ".join(schema_text(part) for part in schema["anyOf"])
    if "const" in schema:
        return f"`{json.dumps(schema['const']).strip(chr(34))}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        text = f"list of {schema_text(schema['items'])}"
        if "minItems" in schema:
            text += f" (at least {schema['minItems']})"
        return text
    text = {"integer": "integer", "number": "number", "string": "text", "boolean": "true/false"}.get(
        kind, str(kind).replace("None", "null")
    )
    signs = {"exclusiveMinimum": ">", "minimum": ">=", "exclusiveMaximum": "<", "maximum": "<="}
    bounds = [f"{sign} {schema[key]}" for key, sign in signs.items() if key in schema]
    if bounds:
        text += " " + " and ".join(bounds)
    if "pattern" in schema:
        text += " like `module:Class`"
    return text


def leaves(model: type[BaseModel], instance: BaseModel | None, prefix: str = "") -> list[dict]:
    """One row per leaf knob of ``model``, depth first, with its default taken from ``instance``
    (the section's default) when there is one, else from the field."""
    rows = []
    properties = model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if instance is not None:
            default = getattr(instance, name)
        else:
            default = REQUIRED if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            nested = default if isinstance(default, BaseModel) else None
            rows += leaves(field.annotation, nested, key + ".")
            continue
        value = default.model_dump() if isinstance(default, BaseModel) else default
        rows.append(
            {
                "key": key,
                "type": schema_text(properties[name]),
                "default": "required" if value is REQUIRED else f"`{json.dumps(value)}`",
                "description": field.description or "",
            }
        )
    return rows


def readers(key: str, stages: dict) -> list[str]:
    """The stages whose dvc.yaml `params:` entry is ``key`` or a section above it."""
    return [
        name
        for name, stage in stages.items()
        if any(key == entry or key.startswith(entry + ".") for entry in stage.get("params", []))
    ]


def shown(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in tree.items():
        keys |= shown(value, f"{prefix}{name}.") if isinstance(value, dict) and value else {prefix + name}
    return keys


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(root: Path = ROOT) -> str:
    yaml = YAML(typ="safe", pure=True)
    stages = yaml.load((root / "dvc.yaml").read_text())["stages"]
    in_file = shown(yaml.load((root / "params.yaml").read_text()))
    lines = [HEADER.rstrip("\n")]
    for section, field in Params.model_fields.items():
        model = field.annotation
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        lines += ["", f"## {section}", "", _cell(model.__doc__ or "")]
        lines += ["", "| key | type / valid values | default | in params.yaml | read by | what it does |"]
        lines.append("|---|---|---|---|---|---|")
        for row in leaves(model, default, section + "."):
            cells = [
                f"`{row['key']}`",
                row["type"],
                row["default"],
                "yes" if row["key"] in in_file else "no",
                ", ".join(readers(row["key"], stages)),
                row["description"],
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # No options: any argument (--help too) gets the docstring instead of a rewritten file.
    if sys.argv[1:]:
        raise SystemExit(__doc__)
    DOC.write_text(render())
    print(f"wrote {DOC}")
