// What the JavaScript clients check in the contract files before they read a field: each file against
// its JSON Schema (schemas.mjs: ajv's code compiled from ../../schemas/*.json by build_schemas.mjs),
// then the rules a schema cannot express, then the graph against the contract. The Python loader makes
// the same checks with the same one-line messages (onnxship/contract/schema.py and checks.py); the
// tests run both on the same mutated files (tests/test_contract_verdicts.py).

import * as compiled from "./schemas.mjs";

export const FIX = "re-run the export stage (dvc repro)";
// The versions of each file this client reads; onnx_metadata.json keeps its own version.
export const VERSIONS = { onnx_features: [1, 2], onnx_metadata: [1] };
const VALIDATORS = {
  onnx_features: { 1: compiled.features1, 2: compiled.features2 },
  onnx_metadata: { 1: compiled.metadata1 },
};
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

// ``$.inputs[0].dtype``, as onnxship.contract.schema.json_path prints it.
export function jsonPath(parts) {
  return "$" + parts.map((part) => {
    if (typeof part === "number") return `[${part}]`;
    return IDENTIFIER.test(part) ? `.${part}` : `[${JSON.stringify(part)}]`;
  }).join("");
}

// A value as compact JSON, cut at ``limit`` characters (Python's ``shown``).
export function shown(value, limit = 60) {
  const text = typeof value === "number" && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
  return text.length <= limit ? text : `${text.slice(0, limit - 3)}...`;
}

// What a value must be, from the keyword it breaks (Python's ``rule``, word for word).
export function rule(keyword, expected, parent) {
  const title = parent && typeof parent === "object" ? parent.title : undefined;
  const listed = Array.isArray(expected) ? expected.map((v) => shown(v)).join(", ") : "";
  const words = {
    type: `must be of type ${Array.isArray(expected) ? expected.join(" or ") : expected}`,
    const: `must be ${shown(expected)}`,
    enum: `must be one of [${listed}]`,
    minimum: `must be at least ${expected}`,
    maximum: `must be at most ${expected}`,
    minLength: expected === 1 ? "must not be empty" : `must have at least ${expected} characters`,
    maxLength: `must have at most ${expected} characters`,
    minItems: `must have at least ${expected} items`,
    maxItems: `must have at most ${expected} items`,
    uniqueItems: "must not repeat an item",
    pattern: title ? `must be ${title}` : `must match ${expected}`,
    format: title ? `must be ${title}` : `must be a valid ${expected}`,
  };
  return Object.hasOwn(words, keyword) ? words[keyword] : `breaks the schema's ${keyword} rule ${shown(expected)}`;
}

// ajv's instancePath ("/inputs/0/dtype") as keys and indices, read against the document itself.
function pathParts(document, pointer) {
  const parts = [];
  let node = document;
  for (const raw of pointer === "" ? [] : pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const part = Array.isArray(node) ? Number(key) : key;
    parts.push(part);
    node = node == null ? undefined : node[part];
  }
  return parts;
}

// Which of several violations is told (Python's schema._order): the one nearest the root, then the
// first path in text order, then the first keyword of RANK.
const RANK = ["required", "additionalProperties", "type", "const", "enum", "minimum", "maximum", "minLength",
  "maxLength", "minItems", "maxItems", "uniqueItems", "pattern", "format"];
function orderKey(document, error) {
  const parts = pathParts(document, error.instancePath);
  const rank = RANK.indexOf(error.keyword);
  return [parts.length, jsonPath(parts), rank < 0 ? RANK.length : rank];
}
function compareKeys(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

// The way ``document`` breaks the schema of ``name`` at ``version`` that is told first, as one line
// without the file's name (Python's Violation.text), or null. ajv reports every error (allErrors).
export function schemaViolation(document, name, version) {
  const validate = VALIDATORS[name][version];
  if (validate(document)) return null;
  let error = null;
  let best = null;
  for (const candidate of validate.errors) {
    if (candidate.keyword === "if") continue; // ajv's summary of a failed "then"/"else", told by its own
    const key = orderKey(document, candidate);
    if (best === null || compareKeys(key, best) < 0) { error = candidate; best = key; }
  }
  const parts = pathParts(document, error.instancePath);
  if (error.keyword === "required") return `${jsonPath([...parts, error.params.missingProperty])} is missing`;
  if (error.keyword === "additionalProperties") {
    return `${jsonPath([...parts, error.params.additionalProperty])} is not a contract field`;
  }
  return `${jsonPath(parts)} is ${shown(error.data)}, but it ${rule(error.keyword, error.schema, error.parentSchema)}`;
}

// The one line for a contract file that breaks its schema (``file``: the name shown).
export function schemaRefusal(file, version, violation) {
  const name = file.split("/").pop().replace(/\.json$/, "");
  return `${file} does not match ${name}.v${version}.json: ${violation}; ${FIX}`;
}

const quoted = (value) => JSON.stringify(value);

// onnx_features.json (valid under its schema): fields once each; in v2, every column in a listed tensor
// of its role, numbered 0, 1, ... in inputs order, the shapes right. Python: checks.features_problem.
export function featuresProblem(features) {
  const inputs = features.inputs;
  const first = new Map();
  for (const [i, spec] of inputs.entries()) {
    if (first.has(spec.name)) return `$.inputs[${i}].name ${quoted(spec.name)} repeats $.inputs[${first.get(spec.name)}].name`;
    first.set(spec.name, i);
  }
  if (features.schema_version === 1) {
    const seen = new Set();
    for (const [i, spec] of inputs.entries()) {
      if (seen.has(spec.onnx_name)) return `$.inputs[${i}].onnx_name ${quoted(spec.onnx_name)} repeats another input's`;
      seen.add(spec.onnx_name);
    }
    return null;
  }
  return packingProblem(features.tensors, inputs);
}

function packingProblem(tensors, inputs) {
  const byName = new Map();
  const roles = new Set();
  for (const [t, tensor] of tensors.entries()) {
    if (byName.has(tensor.onnx_name) || roles.has(tensor.role)) {
      return `$.tensors[${t}] repeats the name or the role of another tensor`;
    }
    byName.set(tensor.onnx_name, t);
    roles.add(tensor.role);
  }
  const columns = tensors.map(() => 0);
  for (const [i, spec] of inputs.entries()) {
    const t = byName.get(spec.tensor);
    if (t === undefined) return `$.inputs[${i}].tensor ${quoted(spec.tensor)} is not one of the $.tensors`;
    if (tensors[t].role !== spec.role) {
      return `$.inputs[${i}] is ${spec.role} but its tensor ${quoted(spec.tensor)} is ${tensors[t].role}`;
    }
    if (spec.index !== columns[t]) {
      return `$.inputs[${i}].index is ${spec.index}, but it must be ${columns[t]}: the columns of `
        + `${quoted(spec.tensor)} are numbered 0, 1, ... in inputs order`;
    }
    columns[t] += 1;
  }
  for (const [t, tensor] of tensors.entries()) {
    if (tensor.shape[1] !== columns[t]) return `$.tensors[${t}].shape is ${quoted(tensor.shape)}, but ${columns[t]} inputs name it`;
  }
  return null;
}

// onnx_metadata.json (valid under its schema): the positive class is class_order's item at
// positive_class_index, the negative class the other one. Python: checks.metadata_problem.
export function metadataProblem(metadata) {
  const order = metadata.class_order;
  const index = metadata.positive_class_index;
  if (order[index] !== metadata.positive_label || order[1 - index] !== metadata.negative_label) {
    return `$.class_order is ${quoted(order)} and $.positive_class_index is ${index}: the positive class `
      + `would be ${quoted(order[index])}, but $.positive_label is ${quoted(metadata.positive_label)} `
      + `and $.negative_label ${quoted(metadata.negative_label)}`;
  }
  return null;
}

// onnxruntime's element types as the Python session names them, so that messages match.
const ORT_TYPES = { float32: "tensor(float)", string: "tensor(string)" };
const ortType = (type) => ORT_TYPES[type] || `tensor(${type})`;

// {graph input: type} the contract describes (v1: one per field; v2: the tensors).
export function graphInputs(features) {
  const listed = features.schema_version === 1 ? features.inputs : features.tensors;
  return new Map(listed.map((spec) => [spec.onnx_name, ORT_TYPES[spec.dtype]]));
}

// The session's graph against the contract (Python: checks.graph_problem): the inputs must be the
// contract's, and probability_output a float tensor [N, classes].
export function graphProblem(features, metadata, session) {
  const expected = graphInputs(features);
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m.isTensor ? ortType(m.type) : "?"]));
  const sameInputs = inputs.size === expected.size && [...expected].every(([n, t]) => inputs.get(n) === t);
  if (!sameInputs) {
    const list = (map) => [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, t]) => `${n} ${t}`).join(", ");
    return `the model has inputs [${list(inputs)}], but onnx_features.json describes [${list(expected)}]`;
  }
  const name = metadata.probability_output;
  const width = metadata.class_order.length;
  const found = session.outputMetadata.find((m) => m.name === name);
  const shape = found && found.isTensor ? found.shape : [];
  const wrongWidth = shape.length === 2 && typeof shape[1] === "number" && shape[1] !== width;
  if (!found || !found.isTensor || ortType(found.type) !== ORT_TYPES.float32 || shape.length !== 2 || wrongWidth) {
    const names = session.outputMetadata.map((m) => m.name).sort().join(", ");
    return `the model has no output ${quoted(name)} of float32 probabilities [N, ${width}] (its outputs: ${names})`;
  }
  return null;
}
