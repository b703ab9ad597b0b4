"""The contract's JSON Schemas: valid, versioned, documented, enforced by the export stage (the stage
script's refusals: tests/test_gate_stage.py)."""

from __future__ import annotations

import copy
import hashlib
import json
import re

import jsonschema
import pytest

from onnxship.contract import schema as contract_schema
from onnxship.contract import spec
from onnxship.convert import export, packing, schema
from onnxship.core import files
from onnxship.core.errors import UserError
from tests.conftest import REPO, churn_xy, fitted


def contract_files(family: str = "logistic_regression", version: int = 1) -> tuple[dict, dict]:
    """onnx_features.json (contract ``version``) and onnx_metadata.json for a small fitted pipeline,
    built in-process."""
    _, _, roles = churn_xy()
    pipeline = fitted(family)
    model = export.convert(pipeline, roles, 17)
    if version == 2:
        packing.pack_inputs(model, packing.layout(roles.numeric, roles.categorical))
    features = export.feature_schema(model, roles, pipeline, version=version)
    lineage = {
        "target": {"positive_label": "yes", "negative_label": "no"},
        "model_sha256": "0" * 64,
        "chosen": {"family": family},
    }
    metadata = export.metadata(
        model, model.SerializeToString(), pipeline, lineage, 0.25, files.json_bytes(features)
    )
    return features, metadata


VERSIONED = [("onnx_features", 1), ("onnx_features", 2), ("onnx_metadata", 1)]


@pytest.mark.parametrize(("name", "version"), VERSIONED)
def test_schemas_are_valid_draft_2020_12_and_versioned(name, version):
    document = schema.load(name, version)
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].endswith(f"{name}:v{version}")
    assert schema.path(name, version).name == f"{name}.v{version}.json"
    assert document["properties"]["schema_version"] == {"const": version}
    assert sorted(p.name for p in schema.path(name, 1).parent.glob("*.json")) == sorted(
        f"{n}.v{v}.json" for n, v in VERSIONED
    )


@pytest.mark.parametrize(
    ("family", "version"), [("logistic_regression", 1), ("random_forest", 1), ("random_forest", 2)]
)
def test_exported_contract_files_match_their_schemas(family, version):
    features, metadata = contract_files(family, version)
    assert features["schema_version"] == version
    assert schema.errors(features, "onnx_features") == []
    assert schema.errors(metadata, "onnx_metadata") == []
    assert metadata["features_sha256"] == hashlib.sha256(files.json_bytes(features)).hexdigest()


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("onnx_features", lambda f: f["inputs"][0].update(dtype="float64"), "$.inputs[0].dtype"),
        ("onnx_features", lambda f: f["inputs"][-1].update(categories=None), "$.inputs[18].categories"),
        (
            "onnx_features",
            lambda f: f["encoding"]["numeric"].pop("missing_tokens"),
            "missing_tokens is missing",
        ),
        ("onnx_features", lambda f: f.update(undocumented=1), "$.undocumented is not a contract field"),
        ("onnx_metadata", lambda m: m.pop("threshold"), "$.threshold is missing"),
        ("onnx_metadata", lambda m: m.update(threshold=1.5), "$.threshold is 1.5, but it must be at most 1"),
        ("onnx_metadata", lambda m: m.update(model_sha256="abc"), "$.model_sha256"),
        (
            "onnx_metadata",
            lambda m: m.update(positive_label=1),
            "$.positive_label is 1, but it must be of type string",
        ),
    ],
)
def test_a_broken_contract_file_is_named_with_its_json_path(name, change, message):
    features, metadata = contract_files()
    instance = copy.deepcopy(features if name == "onnx_features" else metadata)
    change(instance)
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        schema.validate(instance, name)
    assert f"{name}.json does not match {name}.v1.json" in str(caught.value)
    # The clients refuse it with the same words (onnxship.contract.schema, used by every loader).
    assert message in contract_schema.violations(instance, name, 1)[0].text


def test_contract_rules_are_the_ones_training_uses():
    features, _ = contract_files()
    numeric = features["encoding"]["numeric"]
    assert numeric["missing_tokens"] == sorted(spec.NUMERIC_MISSING)
    assert features["encoding"]["categorical"]["missing_tokens"] == [spec.CATEGORICAL_MISSING]
    assert numeric["number_pattern"] == spec.NUMBER_PATTERN


def test_the_contract_doc_documents_every_contract_field():
    section = (REPO / "docs" / "contract.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))

    def names(node) -> set[str]:
        found = set()
        if isinstance(node, dict):
            found |= set(node.get("properties", {}))
            for child in node.values():
                found |= names(child)
        elif isinstance(node, list):
            for child in node:
                found |= names(child)
        return found

    for name, version in VERSIONED:
        missing = names(schema.load(name, version)) - documented
        assert not missing, f"docs/contract.md does not document {sorted(missing)}"


def test_export_stage_output_matches_the_schemas(staged):
    # What scripts/export.py wrote (run in-process on the fast params, tests/conftest.py ``staged``).
    for name in schema.NAMES:
        instance = json.loads((staged.served / f"{name}.json").read_text())
        assert schema.errors(instance, name) == []


def test_wide_contracts_are_validated_once_per_kind_of_input():
    """contract.schema._condensed validates entries that differ only in name and index once: sound
    only while the schemas ask no more of a name than a non-empty string, of an index than an integer
    from 0."""
    for version in (1, 2):
        entry = contract_schema.load("onnx_features", version)["$defs"]["input"]["properties"]
        for field, rules in (("name", contract_schema.TEXT_RULES), ("onnx_name", contract_schema.TEXT_RULES),
                             ("index", contract_schema.INDEX_RULES)):  # fmt: skip
            if field in entry:
                assert {k: v for k, v in entry[field].items() if k != "description"} == rules, field
    features, _ = contract_files()
    numeric = next(s for s in features["inputs"] if s["role"] == "numeric")
    wide = {**features, "inputs": [{**numeric, "name": f"c{i}", "onnx_name": f"c{i}"} for i in range(500)]}
    assert len(contract_schema._condensed(wide)["inputs"]) == 1
    contract_schema.check(wide, "onnx_features.json", 1)
    wide["inputs"][321] = {**numeric, "name": "", "onnx_name": "c321"}
    with pytest.raises(UserError, match=re.escape('$.inputs[321].name is "", but it must not be empty')):
        contract_schema.check(wide, "onnx_features.json", 1)
