#!/usr/bin/env node
// A non-Python client of the onnxship contract: it scores raw records with model.onnx using only
// onnx_features.json and onnx_metadata.json (onnxruntime-node, no other dependency).
//
//   node score.mjs --artifacts ../../artifacts --input rows.csv --output scores.jsonl [--batch-size 512]
//                  [--version-check strict|warn|off]
//
// Input: a CSV with a header (.csv, RFC 4180 quoting) or JSON lines (.jsonl, .ndjson, .json), UTF-8.
// Output: JSON lines {"row", "probability", "decision", "label"} (.jsonl), written to a temp file and
// renamed at the end. Errors: one line "error: ..." on stderr and exit code 2; the input rules (and
// the refusals) are the Python scorer's, checked case by case by tests/corpus.

import { createHash } from "node:crypto";
import {
  closeSync, createReadStream, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync,
} from "node:fs";
import path from "node:path";
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
  if (!Number.isInteger(args.batchSize) || args.batchSize < 1) {
    throw new UserError(`batch size must be at least 1, got ${args.batchSize}`);
  }
  if (!["strict", "warn", "off"].includes(args.versionCheck)) {
    throw new UserError("--version-check must be strict, warn or off");
  }
  args.inputFormat = fileFormat(args.input, "input");
  if (fileFormat(args.output, "output") !== "jsonl") {
    throw new UserError(`this client writes JSON lines: name the output ${args.output} .jsonl`);
  }
  return args;
}

const FORMATS = { ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl" };

function fileFormat(file, what) {
  const format = FORMATS[path.extname(file).toLowerCase()];
  if (!format) {
    throw new UserError(`cannot tell the format of ${what} ${file} from its suffix: name it .csv or .jsonl`);
  }
  return format;
}

// JSON.parse keeps the last of two equal keys; the contract (and the Python scorer) refuses them.
// The text is valid JSON (JSON.parse accepted it): walk it, tracking the keys of each open object.
function duplicateKey(text) {
  const stack = []; // per open container: a Set of keys (object) or null (array)
  let expectKey = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1));
        const keys = stack[stack.length - 1];
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{") {
      stack.push(new Set());
      expectKey = true;
    } else if (c === "[") {
      stack.push(null);
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
  return null;
}

function parseJson(text) {
  const value = JSON.parse(text);
  const twice = duplicateKey(text);
  if (twice !== null) throw new SyntaxError(`duplicate key ${JSON.stringify(twice)}`);
  return value;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function readContractFile(file) {
  if (!existsSync(file)) throw new UserError(`${file} not found: point --artifacts at the export's folder`);
  const bytes = readFileSync(file);
  let obj;
  try {
    obj = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${err.message}); re-run the export stage (dvc repro)`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new UserError(`${file} is not a JSON object; re-run the export stage (dvc repro)`);
  }
  if (obj.schema_version !== CONTRACT_VERSION) {
    throw new UserError(`${file} has schema_version ${obj.schema_version}; this client reads version 1`);
  }
  return { obj, bytes };
}

function checkRuntime(recorded, installed, policy) {
  if (policy === "off") return;
  if (typeof recorded !== "string") throw new TypeError("versions.onnxruntime is not a string");
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
  try {
    return await checkedContract(folder, versionCheck, features, featuresBytes, metadata);
  } catch (err) {
    if (err instanceof UserError) throw err;
    // A contract file that parses but lacks what it must say (a key missing, a wrong type).
    throw new UserError(
      `${folder}/onnx_features.json or onnx_metadata.json is incomplete (${err.message}); `
      + "re-run the export stage (dvc repro)",
    );
  }
}

async function checkedContract(folder, versionCheck, features, featuresBytes, metadata) {
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
  if (typeof metadata.threshold !== "number" || !Number.isFinite(metadata.threshold)) {
    throw new UserError(`onnx_metadata.json has threshold ${JSON.stringify(metadata.threshold)}: it must be a finite number`);
  }
  const index = metadata.positive_class_index;
  if (!Number.isInteger(index) || index < 0 || index >= metadata.class_order.length) {
    throw new UserError(`onnx_metadata.json has positive_class_index ${JSON.stringify(index)} outside class_order`);
  }
  const cat = features.encoding.categorical;
  if (cat.missing_tokens.length !== 1 || cat.missing_tokens[0] !== cat.missing_value) {
    throw new UserError("onnx_features.json states categorical missing tokens this client does not know");
  }
  let session;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: ["cpu"], intraOpNumThreads: 1, interOpNumThreads: 1,
    });
  } catch (err) {
    throw new UserError(`${folder}: onnxruntime cannot load the model (${String(err.message).split("\n")[0]})`);
  }

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
// is not a record (the header, a blank line, a line inside a quoted field). Rows are numbered as the
// Python scorer numbers them.

// Splits CSV lines into cells as Python's csv module (strict) does: a field that starts with a
// quote ends at the closing quote ("" is a quote), may span lines, and must be followed by a comma
// or the end of the line; a quote inside an unquoted field is an ordinary character.
function csvSplitter() {
  let cells = [];
  let cell = "";
  let quoted = false; // inside a quoted field that continues on the next line
  return (lineNumber, text) => {
    let i = 0;
    if (quoted) cell += "\n";
    let atStart = !quoted;
    for (;;) {
      if (quoted) {
        const close = text.indexOf('"', i);
        if (close < 0) { cell += text.slice(i); return null; } // the field goes on
        cell += text.slice(i, close);
        if (text[close + 1] === '"') { cell += '"'; i = close + 2; continue; }
        quoted = false;
        i = close + 1;
        if (i < text.length && text[i] !== ",") {
          throw new UserError(`line ${lineNumber} is not valid CSV (',' expected after '"')`);
        }
      } else if (atStart && text[i] === '"') {
        quoted = true;
        atStart = false;
        i += 1;
        continue;
      } else {
        const comma = text.indexOf(",", i);
        const end = comma < 0 ? text.length : comma;
        cell += text.slice(i, end);
        i = end;
      }
      cells.push(cell); // i is at a comma or at the end of the line
      cell = "";
      if (i >= text.length) { const done = cells; cells = []; return done; }
      i += 1;
      atStart = true;
    }
  };
}

function csvParser(required, file) {
  const split = csvSplitter();
  let header = null;
  let row = 0;
  let pending = false;
  const parser = (lineNumber, text) => {
    if (header === null) {
      if (text === "") throw new UserError(`${file} is empty: it needs a header row naming the columns`);
      const cells = split(lineNumber, text);
      if (cells === null) { pending = true; return null; }
      pending = false;
      header = cells;
      const duplicates = [...new Set(header.filter((name, i) => header.indexOf(name) !== i))].sort();
      if (duplicates.length) {
        throw new UserError(`${file} has duplicate column names ${JSON.stringify(duplicates)}: rename them`);
      }
      const absent = required.filter((name) => !header.includes(name));
      if (absent.length) {
        throw new UserError(`${file} has no column ${absent.map((n) => `'${n}'`).join(", ")}: the model needs every input column`);
      }
      return null;
    }
    if (text === "" && !pending) return null; // a blank line is not a row
    const cells = split(lineNumber, text);
    if (cells === null) { pending = true; return null; }
    pending = false;
    row += 1;
    if (cells.length !== header.length) {
      throw new UserError(`row ${row} (line ${lineNumber}) has ${cells.length} fields but the header has ${header.length}`);
    }
    const record = {};
    header.forEach((name, i) => { record[name] = cells[i]; });
    return [row, record];
  };
  parser.finish = (lineNumber) => {
    if (header === null) throw new UserError(`${file} is empty: it needs a header row naming the columns`);
    if (pending) throw new UserError(`${file} line ${lineNumber} is not valid CSV (unexpected end of data)`);
  };
  return parser;
}

function jsonParser() {
  let row = 0;
  return (lineNumber, text) => {
    if (text.trim() === "") return null;
    row += 1;
    let record;
    try {
      record = parseJson(text);
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

// The input's lines, decoded as strict UTF-8 (a BOM dropped, "\r\n" read as "\n"): a Latin-1 file
// is refused, as the Python scorer refuses it, rather than read with replacement characters.
async function* utf8Lines(file) {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = Buffer.alloc(0);
  let lineNumber = 0;
  const decode = (bytes) => {
    lineNumber += 1;
    try {
      const text = decoder.decode(bytes);
      const line = lineNumber === 1 ? text.replace(/^\uFEFF/, "") : text;
      return line.endsWith("\r") ? line.slice(0, -1) : line;
    } catch {
      throw new UserError(`${file} line ${lineNumber} is not UTF-8 text: save the file as UTF-8`);
    }
  };
  for await (const chunk of createReadStream(file)) {
    let buffer = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let newline;
    while ((newline = buffer.indexOf(0x0a)) >= 0) {
      yield [lineNumber + 1, decode(buffer.subarray(0, newline))];
      buffer = buffer.subarray(newline + 1);
    }
    rest = Buffer.from(buffer);
  }
  if (rest.length) yield [lineNumber + 1, decode(rest)];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(args.input) || !statSync(args.input).isFile()) {
    throw new UserError(`input file ${args.input} not found`);
  }
  const folder = path.dirname(args.output);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new UserError(`the folder of ${args.output} does not exist: create ${folder} first`);
  }
  if (path.resolve(args.output) === path.resolve(args.input)) {
    throw new UserError("the output file is the input file: write the scores to another file");
  }
  const contract = await loadContract(args.artifacts, args.versionCheck);
  const parse = args.inputFormat === "csv"
    ? csvParser(contract.inputs.map((input) => input.name), args.input)
    : jsonParser();
  // Stream the input line by line and score it in batches: a large file is never held whole.
  const tmp = path.join(folder, `.${path.basename(args.output)}.${process.pid}.tmp`);
  const out = openSync(tmp, "w");
  try {
    let batch = { values: [], rows: [] };
    let last = 0;
    for await (const [lineNumber, text] of utf8Lines(args.input)) {
      last = lineNumber;
      const parsed = parse(lineNumber, text);
      if (parsed === null) continue;
      const [row, record] = parsed;
      batch.values.push(recordValues(contract.inputs, row, lineNumber, record));
      batch.rows.push(row);
      if (batch.rows.length >= args.batchSize) {
        await scoreBatch(contract, batch, out);
        batch = { values: [], rows: [] };
      }
    }
    if (parse.finish) parse.finish(last);
    if (batch.rows.length) await scoreBatch(contract, batch, out);
    closeSync(out);
    renameSync(tmp, args.output);
  } catch (err) {
    try { closeSync(out); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    throw err;
  }
}

// File-system failures are the user's to fix (a path, a permission): one line, exit code 2.
const FS_ERRORS = { ENOENT: "not found", EACCES: "permission denied", EPERM: "permission denied",
  EISDIR: "is a folder", ENOTDIR: "a part of the path is not a folder" };

main().catch((err) => {
  if (err instanceof UserError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(2);
  }
  if (err && FS_ERRORS[err.code]) {
    process.stderr.write(`error: ${err.path || ""}: ${FS_ERRORS[err.code]} (${err.code})\n`);
    process.exit(2);
  }
  // Anything else is a bug of this client: one line still, and exit code 1 (not the user's input).
  process.stderr.write(`error: unexpected failure, please report it: ${String(err && err.message).split("\n")[0]}\n`);
  process.exit(1);
});
