#!/usr/bin/env node
// A non-Python client of the onnxship contract: it scores raw records with model.onnx using only
// onnx_features.json and onnx_metadata.json (onnxruntime-node, no other dependency).
//
//   node score.mjs --artifacts ../../artifacts --input rows.csv --output scores.jsonl [--batch-size 512]
//                  [--version-check strict|warn|off]
//
// Input: a CSV with a header (no quoted fields) or JSON lines (.jsonl). Output: JSON lines
// {"row", "probability", "decision", "label"}, written to a temp file and renamed at the end.
// Errors: one line "error: ..." on stderr and exit code 2.

import { createHash } from "node:crypto";
import { createReadStream, existsSync, openSync, readFileSync, renameSync, rmSync, writeSync, closeSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import ort from "onnxruntime-node";

const CONTRACT_VERSION = 1;

class UserError extends Error {}

function parseArgs(argv) {
  const args = { artifacts: "artifacts", batchSize: 512, versionCheck: "strict" };
  const names = { "--artifacts": "artifacts", "--input": "input", "--output": "output",
    "--batch-size": "batchSize", "--version-check": "versionCheck" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new UserError(`unknown or incomplete option ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  if (!args.input || !args.output) throw new UserError("--input and --output are required");
  args.batchSize = Number(args.batchSize);
  if (!Number.isInteger(args.batchSize) || args.batchSize < 1) throw new UserError("--batch-size must be >= 1");
  if (!["strict", "warn", "off"].includes(args.versionCheck)) {
    throw new UserError("--version-check must be strict, warn or off");
  }
  return args;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function readContractFile(file) {
  if (!existsSync(file)) throw new UserError(`${file} not found: point --artifacts at the export's folder`);
  const bytes = readFileSync(file);
  let obj;
  try {
    obj = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${err.message})`);
  }
  if (obj.schema_version !== CONTRACT_VERSION) {
    throw new UserError(`${file} has schema_version ${obj.schema_version}; this client reads version 1`);
  }
  return { obj, bytes };
}

function checkRuntime(recorded, installed, policy) {
  if (policy === "off") return;
  const [wantMajor, wantMinor] = recorded.split(".").map(Number);
  const [haveMajor, haveMinor] = installed.split(".").map(Number);
  if (wantMajor === haveMajor && wantMinor === haveMinor) return;
  const message = `onnxruntime-node ${installed} is installed but the model was exported with onnxruntime ${recorded}`;
  if (wantMajor !== haveMajor && policy === "strict") {
    throw new UserError(`${message} (a different major version): pass --version-check warn to score anyway`);
  }
  process.stderr.write(`warning: ${message}: scores may differ slightly\n`);
}

// The contract, turned into one converter per input: raw value -> what the tensor holds.
async function loadContract(folder, versionCheck) {
  const { obj: features, bytes: featuresBytes } = readContractFile(path.join(folder, "onnx_features.json"));
  const { obj: metadata } = readContractFile(path.join(folder, "onnx_metadata.json"));
  if (sha256(featuresBytes) !== metadata.features_sha256) {
    throw new UserError("onnx_features.json does not match the sha256 in onnx_metadata.json");
  }
  const modelFile = path.join(folder, metadata.model_file);
  if (!existsSync(modelFile)) throw new UserError(`${modelFile} not found`);
  const modelBytes = readFileSync(modelFile);
  if (sha256(modelBytes) !== metadata.model_sha256) {
    throw new UserError(`${modelFile} does not match the sha256 in onnx_metadata.json: refusing it`);
  }
  checkRuntime(metadata.versions.onnxruntime, ort.env.versions.node, versionCheck);
  if (metadata.decision_operator !== ">=" || metadata.decision_precision !== "float64") {
    throw new UserError("onnx_metadata.json states a decision rule this client does not implement");
  }
  const session = await ort.InferenceSession.create(modelBytes, {
    executionProviders: ["cpu"], intraOpNumThreads: 1, interOpNumThreads: 1,
  });

  const numeric = features.encoding.numeric;
  const categorical = features.encoding.categorical;
  const numericMissing = new Set(numeric.missing_tokens);
  const categoricalMissing = new Set(categorical.missing_tokens);
  const numberText = new RegExp(numeric.number_pattern);

  const toNumber = (value) => {
    let x;
    if (value === null) return NaN;
    if (typeof value === "string") {
      if (numericMissing.has(value)) return NaN;
      if (!numberText.test(value)) throw new Error(`${JSON.stringify(value)} is not a number`);
      x = Number(value); // decimal text -> nearest float64; the Float32Array rounds it to float32
    } else if (typeof value === "number") {
      if (Number.isNaN(value)) return NaN;
      x = value;
    } else {
      throw new Error(`expected a number, text or null, got ${JSON.stringify(value)}`);
    }
    if (!Number.isFinite(Math.fround(x))) throw new Error(`${JSON.stringify(value)} is beyond the float32 range`);
    return x;
  };
  const toCategory = (value) => {
    if (value === null) return categorical.missing_value;
    if (typeof value !== "string") throw new Error(`expected text or null, got ${JSON.stringify(value)}`);
    // Unseen categories pass through unchanged: the model one-hot-encodes them as all zeros.
    return categoricalMissing.has(value) ? categorical.missing_value : value;
  };
  const inputs = features.inputs.map((spec) => ({
    name: spec.name,
    onnxName: spec.onnx_name,
    numeric: spec.dtype === "float32",
    convert: spec.dtype === "float32" ? toNumber : toCategory,
  }));
  return { session, metadata, inputs };
}

// Line parsers: each takes (line number, text) and returns [row, record], or null for a line that
// is not a record (the header, a blank line). Rows are numbered as the Python scorer numbers them.
function csvParser(required) {
  let header = null;
  let row = 0;
  return (lineNumber, text) => {
    if (text.includes('"')) {
      throw new UserError(`line ${lineNumber}: quoted CSV fields are not supported by this client: use JSON lines`);
    }
    if (header === null) {
      header = text.split(",");
      const absent = required.filter((name) => !header.includes(name));
      if (absent.length) throw new UserError(`the input has no column ${absent.join(", ")}`);
      return null;
    }
    if (text === "") return null;
    row += 1;
    const cells = text.split(",");
    if (cells.length !== header.length) {
      throw new UserError(`row ${row} (line ${lineNumber}) has ${cells.length} fields, the header ${header.length}`);
    }
    const record = {};
    header.forEach((name, i) => { record[name] = cells[i]; });
    return [row, record];
  };
}

function jsonParser() {
  let row = 0;
  return (lineNumber, text) => {
    if (text.trim() === "") return null;
    row += 1;
    let record;
    try {
      record = JSON.parse(text);
    } catch (err) {
      throw new UserError(`row ${row} (line ${lineNumber}) is not valid JSON (${err.message})`);
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      throw new UserError(`row ${row} (line ${lineNumber}) is not a JSON object`);
    }
    return [row, record];
  };
}

function recordValues(inputs, row, lineNumber, record) {
  return inputs.map((input) => {
    if (!Object.hasOwn(record, input.name)) {
      throw new UserError(`row ${row} (line ${lineNumber}), column '${input.name}': the field is missing`);
    }
    try {
      return input.convert(record[input.name]);
    } catch (err) {
      throw new UserError(`row ${row} (line ${lineNumber}), column '${input.name}': ${err.message}`);
    }
  });
}

// Builds one [n, 1] tensor per input, runs the model and applies the contract's decision rule;
// appends one JSON line per row to the open file descriptor ``out``.
async function scoreBatch(contract, batch, out) {
  const { session, metadata, inputs } = contract;
  const n = batch.rows.length;
  const feeds = {};
  inputs.forEach((input, j) => {
    const column = batch.values.map((values) => values[j]);
    feeds[input.onnxName] = input.numeric
      ? new ort.Tensor("float32", Float32Array.from(column), [n, 1])
      : new ort.Tensor("string", column, [n, 1]);
  });
  const result = await session.run(feeds, [metadata.probability_output]);
  const probabilities = result[metadata.probability_output].data; // Float32Array, [n, 2] row-major
  const width = probabilities.length / n;
  const lines = batch.rows.map((row, i) => {
    const p = probabilities[i * width + metadata.positive_class_index]; // float32 read as a float64
    const decision = p >= metadata.threshold;
    const label = decision ? metadata.positive_label : metadata.negative_label;
    return JSON.stringify({ row, probability: p, decision, label });
  });
  writeSync(out, lines.join("\n") + "\n");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(args.input)) throw new UserError(`input file ${args.input} not found`);
  const contract = await loadContract(args.artifacts, args.versionCheck);
  const parse = args.input.endsWith(".csv")
    ? csvParser(contract.inputs.map((input) => input.name))
    : jsonParser();
  // Stream the input line by line and score it in batches: a large file is never held whole.
  const reader = readline.createInterface({
    input: createReadStream(args.input, { encoding: "utf8" }),
    crlfDelay: Infinity,
  });
  const tmp = path.join(path.dirname(args.output), `.${path.basename(args.output)}.${process.pid}.tmp`);
  const out = openSync(tmp, "w");
  try {
    let batch = { values: [], rows: [] };
    let lineNumber = 0;
    for await (const text of reader) {
      lineNumber += 1;
      const parsed = parse(lineNumber, lineNumber === 1 ? text.replace(/^\uFEFF/, "") : text);
      if (parsed === null) continue;
      const [row, record] = parsed;
      batch.values.push(recordValues(contract.inputs, row, lineNumber, record));
      batch.rows.push(row);
      if (batch.rows.length >= args.batchSize) {
        await scoreBatch(contract, batch, out);
        batch = { values: [], rows: [] };
      }
    }
    if (batch.rows.length) await scoreBatch(contract, batch, out);
    closeSync(out);
    renameSync(tmp, args.output);
  } catch (err) {
    try { closeSync(out); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    throw err;
  }
}

main().catch((err) => {
  process.stderr.write(`error: ${err instanceof UserError ? err.message : err.stack || err}\n`);
  process.exit(2);
});
