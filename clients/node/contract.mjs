// The onnxship contract in plain JavaScript, for every JavaScript client: the Node client
// (score.mjs, onnxruntime-node) and the web page (clients/web, onnxruntime-web) import this one file.
// It imports only its siblings (checks.mjs and the compiled schemas): reading files or URLs, hashing
// and the ONNX Runtime build are the caller's (passed in), so the same checks, parsing rules and
// refusals run in Node and in a browser. It reads onnx_features.json v1 (one [n, 1] tensor per input)
// and v2 (packed: one float32 [n, K] and one string [n, M] tensor); packFeeds builds either.

import {
  featuresProblem, FIX, graphProblem, metadataProblem, schemaRefusal, schemaViolation, shown as schemaShown, VERSIONS,
} from "./checks.mjs";

export class UserError extends Error {}

// One input row breaks the contract (a value, a ragged row): the Node client stops on it, as the
// Python scorer does; the web page lists it and scores the other rows (Python's --skip-invalid).
export class InvalidRecord extends UserError {
  constructor(row, line, message) {
    super(message);
    this.row = row;
    this.line = line;
  }
}

// A contract file nested deeper is refused, as the Python loader refuses it (its parser stops near
// 1,000 levels; no contract nests so).
export const MAX_DEPTH = 500;

// JSON.parse keeps the last of two equal keys; the contract (and the Python scorer) refuses them.
// The text is valid JSON (JSON.parse accepted it): walk it, tracking the keys of each open object.
// Returns the repeated key, or null; throws a SyntaxError for JSON nested deeper than ``maxDepth``.
function duplicateKey(text, maxDepth) {
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
    } else if (c === "{" || c === "[") {
      stack.push(c === "{" ? new Set() : null);
      expectKey = c === "{";
      if (stack.length > maxDepth) throw new SyntaxError(`nested deeper than ${maxDepth} levels`);
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
  return null;
}

export function parseJson(text, maxDepth = Infinity) {
  const value = JSON.parse(text);
  const twice = duplicateKey(text, maxDepth);
  if (twice !== null) throw new SyntaxError(`duplicate key ${JSON.stringify(twice)}`);
  return value;
}

// One JSON-lines record, by the rules of onnxship.serve.json_lines: no key twice, nesting at most
// MAX_JSON_DEPTH deep (Python's parser would recurse past its limit), no lone surrogate (not text).
export const MAX_JSON_DEPTH = 100;

export function jsonRecord(text) {
  const open = (text.match(/[[{]/g) || []).length;
  if (open > MAX_JSON_DEPTH && jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new SyntaxError(`nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  const record = parseJson(text);
  if (text.includes("\\u") && /\\u[dD][89a-fA-F]/.test(text)) {
    const bad = loneSurrogate(record);
    if (bad !== null) {
      throw new SyntaxError(`a lone surrogate \\u${bad.toString(16).padStart(4, "0")} is not text`);
    }
  }
  return record;
}

// How deeply the brackets of a JSON text nest, outside its strings (json_lines.json_depth).
export function jsonDepth(text) {
  const brackets = text.replace(/"(?:[^"\\]|\\.)*"/gs, "").replace(/[^[\]{}]/g, "");
  let depth = 0;
  let deepest = 0;
  for (const c of brackets) {
    depth += c === "[" || c === "{" ? 1 : -1;
    deepest = Math.max(deepest, depth);
  }
  return deepest;
}

// The first lone surrogate's code in a parsed JSON value's strings and keys, or null.
function loneSurrogate(value) {
  const stack = [value];
  while (stack.length) {
    const item = stack.pop();
    const strings = typeof item === "string" ? [item]
      : item !== null && typeof item === "object" ? Object.keys(item) : [];
    for (const text of strings) {
      if (!text.isWellFormed()) {
        const match = text.match(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
        return match[0].charCodeAt(0);
      }
    }
    if (item !== null && typeof item === "object") stack.push(...Object.values(item));
  }
  return null;
}

// A contract file's bytes -> its object: strict UTF-8, JSON without duplicate keys, a schema version
// this client reads, valid under that version's JSON Schema (onnxship.contract.artifacts._parse).
export function contractObject(bytes, file) {
  const base = file.split("/").pop();
  let obj;
  try {
    // ignoreBOM: a byte order mark stays in the text and JSON.parse refuses it, as Python's json does.
    obj = parseJson(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes), MAX_DEPTH);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${String(err.message).split("\n")[0]}); ${FIX}`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new UserError(`${file} is not a JSON object; ${FIX}`);
  }
  const version = obj.schema_version;
  const known = VERSIONS[base.replace(/\.json$/, "")];
  if (!known.includes(version)) {
    throw new UserError(`${file} has schema_version ${schemaShown(version)}; this client reads ${base} version `
      + `${known.join(" and ")}: use the onnxship that exported the model`);
  }
  const violation = schemaViolation(obj, base.replace(/\.json$/, ""), version);
  if (violation !== null) throw new UserError(schemaRefusal(file, version, violation));
  return obj;
}

// The runtime that exported the model against the one installed: a different major version is
// refused under "strict"; any other difference is a warning (returned, for the caller to show).
export function runtimeWarning(recorded, runtime, policy) {
  if (policy === "off") return null;
  if (typeof recorded !== "string") throw new TypeError("versions.onnxruntime is not a string");
  const [wantMajor, wantMinor] = recorded.split(".").map(Number);
  const [haveMajor, haveMinor] = runtime.version.split(".").map(Number);
  if (wantMajor === haveMajor && wantMinor === haveMinor) return null;
  const message = `${runtime.name} ${runtime.version} is installed but the model was exported with onnxruntime ${recorded}`;
  if (wantMajor !== haveMajor && policy === "strict") {
    throw new UserError(`${message} (a different major version): ${runtime.override} to score anyway`);
  }
  return `${message}: scores may differ slightly`;
}

// The INT8 graph (model.int8.onnx) is not the one onnx_metadata.json describes: the quantize stage's
// report records its sha256. Returns what loadContract's ``source.model`` returns: {file, sha256,
// recordedIn}, for ``read`` (name -> Promise<bytes or null>) and ``where`` (name -> its name in messages).
export async function int8Model(read, where) {
  const name = "quantize_report.json";
  const bytes = await read(name);
  if (bytes === null) {
    throw new UserError(`${where(name)} not found: the INT8 model is checked against the sha256 it records`);
  }
  let report;
  try {
    report = parseJson(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new UserError(`${where(name)} is not valid JSON (${err.message}); re-run the quantize stage (dvc repro)`);
  }
  if (report === null || typeof report.int8_sha256 !== "string") {
    throw new UserError(`${where(name)} records no int8_sha256; re-run the quantize stage (dvc repro)`);
  }
  return { file: "model.int8.onnx", sha256: report.int8_sha256, recordedIn: name };
}

// The rules that tie fields together, which no schema can state (Python: checks.refusal).
function checkFields(features, metadata, where) {
  for (const [name, problem] of [
    ["onnx_features.json", featuresProblem(features)], ["onnx_metadata.json", metadataProblem(metadata)],
  ]) {
    if (problem !== null) throw new UserError(`${where(name)}: ${problem}; ${FIX}`);
  }
}

// Reads and checks the contract of an artifacts folder; returns {session, metadata, features, inputs,
// warning}. ``source`` holds what differs between clients:
//   folder, hint (how to point the client at the export's folder), where(name) (a file's name in
//   messages), read(name) -> Promise<Uint8Array or null if absent>, sha256(bytes) -> Promise<hex>,
//   runtime {name, version, override}, versionCheck, createSession(bytes) -> Promise<session>, and
//   optionally model(metadata) -> Promise<{file, sha256}> (another graph, e.g. the INT8 file).
export async function loadContract(source) {
  const raw = {};
  for (const name of ["onnx_features.json", "onnx_metadata.json"]) {
    raw[name] = await source.read(name);
    if (raw[name] === null) throw new UserError(`${source.where(name)} not found: ${source.hint}`);
  }
  const features = contractObject(raw["onnx_features.json"], source.where("onnx_features.json"));
  const metadata = contractObject(raw["onnx_metadata.json"], source.where("onnx_metadata.json"));
  const model = source.model
    ? await source.model(metadata)
    : { file: metadata.model_file, sha256: metadata.model_sha256 };
  const modelBytes = await source.read(model.file);
  if (modelBytes === null) {
    throw new UserError(`${source.where(model.file)} not found: copy it with the JSON files it belongs to`);
  }
  // The order of the Python loader's checks: hashes, runtime version, fields together, the graph.
  if (await source.sha256(raw["onnx_features.json"]) !== metadata.features_sha256) {
    throw new UserError(`${source.where("onnx_features.json")} does not match the sha256 in onnx_metadata.json: `
      + "the two files come from different exports; copy both from the same export");
  }
  if (await source.sha256(modelBytes) !== model.sha256) {
    throw new UserError(`${source.where(model.file)} does not match the sha256 in `
      + `${model.recordedIn || "onnx_metadata.json"}: refusing a model the contract does not describe; `
      + "copy model.onnx and its JSON files from the same export");
  }
  const warning = runtimeWarning(metadata.versions.onnxruntime, source.runtime, source.versionCheck);
  checkFields(features, metadata, source.where);
  let session;
  try {
    session = await source.createSession(modelBytes);
  } catch (err) {
    throw new UserError(`${source.folder}: onnxruntime cannot load the model (${String(err.message).split("\n")[0]})`);
  }
  const problem = graphProblem(features, metadata, session);
  if (problem !== null) {
    throw new UserError(`${source.folder}: ${problem}: copy model.onnx and its JSON files from the same export`);
  }
  const inputs = converters(features);
  return { session, metadata, features, inputs, layout: layout(features, inputs), warning, modelFile: model.file };
}

// The graph's input tensors and which record fields fill them: v1, one [n, 1] tensor per field; v2,
// the packed tensors, each field at its ``index`` (checked: 0, 1, ... in inputs order).
function layout(features, inputs) {
  if (features.schema_version === 1) {
    return inputs.map((input, j) => ({ onnxName: input.onnxName, numeric: input.numeric, fields: [j] }));
  }
  return features.tensors.map((tensor) => ({
    onnxName: tensor.onnx_name,
    numeric: tensor.dtype === "float32",
    fields: features.inputs.flatMap((spec, j) => (spec.tensor === tensor.onnx_name ? [j] : [])),
  }));
}

// The feeds of a batch (values: one array of converted values per row, in input order), v1 or v2 alike:
// each tensor [n, fields] row-major, float32 or string. ``Tensor``: the ONNX Runtime build's class.
export function packFeeds(contract, Tensor, values) {
  const n = values.length;
  const feeds = {};
  for (const { onnxName, numeric, fields } of contract.layout) {
    const width = fields.length;
    const data = numeric ? new Float32Array(n * width) : new Array(n * width);
    for (let i = 0; i < n; i += 1) {
      const row = values[i];
      for (let k = 0; k < width; k += 1) data[i * width + k] = row[fields[k]];
    }
    feeds[onnxName] = new Tensor(numeric ? "float32" : "string", data, [n, width]);
  }
  return feeds;
}

// A value as messages quote it (onnxship.contract.encode.shown): cut short, and an infinite JSON
// number (1e400) said as such rather than as JSON.stringify's "null".
export function shown(value, limit = 60) {
  if (typeof value === "number" && !Number.isFinite(value) && !Number.isNaN(value)) {
    return "a number too large for float64 (such as 1e400)";
  }
  const text = JSON.stringify(value);
  return text.length <= limit ? text : `${text.slice(0, limit)}... (${text.length.toLocaleString("en")} characters)`;
}

// The contract, turned into one converter per input: raw value -> what the tensor holds.
function converters(features) {
  const numeric = features.encoding.numeric;
  const categorical = features.encoding.categorical;
  const numericMissing = new Set(numeric.missing_tokens);
  const categoricalMissing = new Set(categorical.missing_tokens);
  // Matched against the whole text, as Python's re.fullmatch; the u flag reads it as the schema checked.
  const numberText = new RegExp(`^(?:${numeric.number_pattern})$`, "u");

  const toNumber = (value) => {
    let x;
    if (value === null) return NaN;
    if (typeof value === "string") {
      if (numericMissing.has(value)) return NaN;
      if (!numberText.test(value)) throw new Error(`${shown(value)} is not a number`);
      x = Number(value); // decimal text -> nearest float64; the Float32Array rounds it to float32
    } else if (typeof value === "number") {
      if (Number.isNaN(value)) return NaN;
      x = value;
    } else {
      throw new Error(`expected a number, text or null, got ${shown(value)}`);
    }
    if (!Number.isFinite(Math.fround(x))) {
      throw new Error(`${shown(value)} is infinite or beyond the float32 range (about ±3.4e38)`);
    }
    return x;
  };
  const toCategory = (value) => {
    if (value === null) return categorical.missing_value;
    if (typeof value !== "string") throw new Error(`expected text or null, got ${shown(value)}`);
    // onnxruntime-node's string tensors end at a NUL (Python's do not): refused by both clients.
    if (value.includes("\0")) throw new Error(`${shown(value)} holds a NUL character (\\x00), which a category cannot hold`);
    // Unseen categories pass through unchanged: the model one-hot-encodes them as all zeros.
    return categoricalMissing.has(value) ? categorical.missing_value : value;
  };
  return features.inputs.map((spec) => ({
    name: spec.name,
    onnxName: spec.onnx_name, // v1 only; v2 fields go into their tensor (layout)
    numeric: spec.dtype === "float32",
    convert: spec.dtype === "float32" ? toNumber : toCategory,
  }));
}

// Line parsers: each takes (line number, text) and returns [row, record], or null for a line that
// is not a record (the header, a blank line, a line inside a quoted field). A record is an object,
// or an InvalidRecord for a row that breaks the contract. Rows are numbered as the Python scorer
// numbers them.

// Splits CSV lines into cells as Python's csv module (strict) does: a field that starts with a
// quote ends at the closing quote ("" is a quote), may span lines, and must be followed by a comma
// or the end of the line; a quote inside an unquoted field is an ordinary character.
// Python's csv module refuses a field of more than 131,072 characters (csv.field_size_limit).
export const CSV_FIELD_LIMIT = 131072;

function csvSplitter(file) {
  let cells = [];
  let cell = "";
  let quoted = false; // inside a quoted field that continues on the next line
  const limit = (lineNumber) => {
    // Code points, as Python counts (a string's length counts UTF-16 units).
    if (cell.length > CSV_FIELD_LIMIT && [...cell].length > CSV_FIELD_LIMIT) {
      throw new UserError(`${file} line ${lineNumber} is not valid CSV (field larger than field limit (${CSV_FIELD_LIMIT}))`);
    }
  };
  return (lineNumber, text, ending = "") => {
    let i = 0;
    let atStart = !quoted;
    for (;;) {
      if (quoted) {
        const close = text.indexOf('"', i);
        if (close < 0) { cell += text.slice(i) + ending; limit(lineNumber); return null; } // the field goes on
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
      limit(lineNumber);
      cells.push(cell); // i is at a comma or at the end of the line
      cell = "";
      if (i >= text.length) { const done = cells; cells = []; return done; }
      i += 1;
      atStart = true;
    }
  };
}

function checkHeader(header, required, file) {
  const duplicates = [...new Set(header.filter((name, i) => header.indexOf(name) !== i))].sort();
  if (duplicates.length) {
    throw new UserError(`${file} has duplicate column names ${JSON.stringify(duplicates)}: rename them`);
  }
  const absent = required.filter((name) => !header.includes(name));
  if (absent.length) {
    throw new UserError(`${file} has no column ${absent.map((n) => `'${n}'`).join(", ")}: the model needs every input column`);
  }
}

// ``kept``: the fields --id-column / --keep copy (passthrough's ``fields``), which the header must hold.
export function csvParser(required, file, kept = []) {
  const split = csvSplitter(file);
  let header = null;
  let row = 0;
  let pending = false;
  const parser = (lineNumber, text, ending) => {
    if (header === null) {
      if (text === "") throw new UserError(`${file} is empty: it needs a header row naming the columns`);
      const cells = split(lineNumber, text, ending);
      if (cells === null) { pending = true; return null; }
      pending = false;
      header = cells;
      checkHeader(header, required, file);
      checkKept(header, kept, file);
      return null;
    }
    if (text === "" && !pending) return null; // a blank line is not a row
    const cells = split(lineNumber, text, ending);
    if (cells === null) { pending = true; return null; }
    pending = false;
    row += 1;
    if (cells.length !== header.length) {
      return [row, new InvalidRecord(row, lineNumber,
        `row ${row} (line ${lineNumber}) has ${cells.length} fields but the header has ${header.length}`)];
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

// Returns [row, record, text]: the line's text gives copied numbers as written (keptValues).
export function jsonParser() {
  let row = 0;
  return (lineNumber, text) => {
    if (/^[ \t\r\n]*$/.test(text)) return null; // blank: JSON's white space only (not a BOM, not U+00A0)
    row += 1;
    let record;
    try {
      record = jsonRecord(text);
    } catch (err) {
      return [row, new InvalidRecord(row, lineNumber, `row ${row} (line ${lineNumber}) is not valid JSON (${err.message})`)];
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      return [row, new InvalidRecord(row, lineNumber, `row ${row} (line ${lineNumber}) is not a JSON object`)];
    }
    return [row, record, text];
  };
}

// A record's values in the contract's input order; an InvalidRecord names the first bad field.
export function recordValues(inputs, row, lineNumber, record) {
  if (record instanceof InvalidRecord) throw record;
  return inputs.map((input) => {
    if (!Object.hasOwn(record, input.name)) {
      throw new InvalidRecord(row, lineNumber, `row ${row} (line ${lineNumber}), column '${input.name}': the field is missing`);
    }
    try {
      return input.convert(record[input.name]);
    } catch (err) {
      throw new InvalidRecord(row, lineNumber, `row ${row} (line ${lineNumber}), column '${input.name}': ${err.message}`);
    }
  });
}

// The lines of a byte stream (an async iterable of Uint8Array chunks), decoded as strict UTF-8: a
// Latin-1 file is refused, as the Python scorer refuses it, rather than read with replacement
// characters. A line ends at "\n", "\r\n" or a lone "\r" (Python's universal newlines); only the
// file's first BOM is dropped. Yields [line number, text, its line end].
export async function* utf8Lines(chunks, file) {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let rest = new Uint8Array(0);
  let lineNumber = 0;
  const decode = (bytes) => {
    lineNumber += 1;
    try {
      const text = decoder.decode(bytes);
      return lineNumber === 1 ? text.replace(/^\uFEFF/, "") : text;
    } catch {
      throw new UserError(`${file} line ${lineNumber} is not UTF-8 text: save the file as UTF-8`);
    }
  };
  let pending = []; // chunks of a line longer than a chunk: joined once its end comes (not per chunk)
  for await (const chunk of chunks) {
    if (chunk.indexOf(0x0a) < 0 && chunk.indexOf(0x0d) < 0) {
      pending.push(chunk);
      continue;
    }
    const parts = rest.length ? [rest, ...pending, chunk] : [...pending, chunk];
    pending = [];
    let buffer = parts[0];
    if (parts.length > 1) {
      buffer = new Uint8Array(parts.reduce((size, part) => size + part.length, 0));
      let at = 0;
      for (const part of parts) { buffer.set(part, at); at += part.length; }
    }
    let start = 0;
    let lf = buffer.indexOf(0x0a);
    let cr = buffer.indexOf(0x0d); // searched again only once passed: no quadratic scan
    for (;;) {
      if (lf >= 0 && lf < start) lf = buffer.indexOf(0x0a, start);
      if (cr >= 0 && cr < start) cr = buffer.indexOf(0x0d, start);
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(lf, cr);
      if (end < 0 || (end === cr && end + 1 === buffer.length)) break; // a final "\r" may be half of "\r\n"
      const ending = end === cr ? (buffer[end + 1] === 0x0a ? "\r\n" : "\r") : "\n";
      yield [lineNumber + 1, decode(buffer.subarray(start, end)), ending];
      start = end + ending.length;
    }
    rest = buffer.slice(start);
  }
  if (pending.length) {
    const tail = new Uint8Array(rest.length + pending.reduce((size, part) => size + part.length, 0));
    let at = 0;
    for (const part of [rest, ...pending]) { tail.set(part, at); at += part.length; }
    rest = tail;
  }
  if (rest.length) {
    const cr = rest[rest.length - 1] === 0x0d;
    const text = decode(cr ? rest.subarray(0, rest.length - 1) : rest);
    yield [lineNumber, text, cr ? "\r" : ""];
  }
}

// Runs the model on a batch (values: one array of converted values per row, in input order) and
// applies the contract's decision rule: [{probability, decision, label}] in the batch's order.
// ``Tensor`` is the ONNX Runtime build's own class (onnxruntime-node or onnxruntime-web).
export async function scoreValues(contract, Tensor, values) {
  const { session, metadata } = contract;
  const n = values.length;
  const result = await session.run(packFeeds(contract, Tensor, values), [metadata.probability_output]);
  const probabilities = result[metadata.probability_output].data; // Float32Array, [n, 2] row-major
  const width = probabilities.length / n;
  return values.map((_, i) => {
    const probability = probabilities[i * width + metadata.positive_class_index]; // float32 as float64
    const decision = probability >= metadata.threshold;
    return { probability, decision, label: decision ? metadata.positive_label : metadata.negative_label };
  });
}

// Scores the lines of an input ([line number, text], from utf8Lines) in batches of ``batchSize``
// rows: ``parse`` is csvParser or jsonParser, ``onBatch(rows)`` receives [{row, probability,
// decision, label}] in input order, batch by batch (with ``kept``, from passthrough(), the copied
// fields come after row). An invalid row stops scoring (an InvalidRecord is thrown), unless
// ``onInvalid(invalidRecord)`` is given: then it is reported and left out.
export async function scoreLines(contract, Tensor, lines, {
  parse, batchSize, onBatch, onInvalid = null, kept = passthrough(null, []),
}) {
  let batch = { values: [], rows: [], copied: [] };
  const flush = async () => {
    if (!batch.rows.length) return;
    const scored = await scoreValues(contract, Tensor, batch.values);
    await onBatch(scored.map((s, i) => Object.assign(keptRecord(batch.rows[i], kept.fields, batch.copied[i]), s)));
    batch = { values: [], rows: [], copied: [] };
  };
  let last = 0;
  for await (const [lineNumber, text, ending] of lines) {
    last = lineNumber;
    const parsed = parse(lineNumber, text, ending);
    if (parsed === null) continue;
    const [row, record, source] = parsed;
    let values;
    let copied;
    try {
      if (record instanceof InvalidRecord) throw record;
      copied = keptValues(kept, row, lineNumber, record, source);
      values = recordValues(contract.inputs, row, lineNumber, record);
    } catch (err) {
      if (!(err instanceof InvalidRecord) || onInvalid === null) throw err;
      onInvalid(err);
      continue;
    }
    batch.values.push(values);
    batch.rows.push(row);
    batch.copied.push(copied);
    if (batch.rows.length >= batchSize) await flush();
  }
  if (parse.finish) parse.finish(last);
  await flush();
}

// --- input fields copied to the scores (--id-column, --keep) -----------------------------------------
// The rules of onnxship.serve.passthrough (docs/serving.md states them once): the id first, each
// name once; a name the output uses is refused; a CSV header without a field is refused; a record
// without it, or with an empty id, is an invalid row; values are copied as text, JSON numbers as
// written in the line, null as "", an object or array refused.

export const OUTPUT_FIELDS = ["row", "probability", "decision", "label"];

// --keep "a, b" -> ["a", "b"]: split on commas, spaces around names dropped, empty names ignored.
export function keepList(text) {
  return (text || "").split(",").map((name) => name.trim()).filter((name) => name !== "");
}

export function passthrough(idColumn, keep) {
  const fields = [...new Set([...(idColumn ? [idColumn] : []), ...keep])];
  for (const name of fields) {
    if (OUTPUT_FIELDS.includes(name)) {
      throw new UserError(`column '${name}' would clash with the output's ${name}: rename it in the input`);
    }
  }
  return { idColumn: idColumn || null, fields };
}

function checkKept(header, kept, file) {
  for (const name of kept) {
    if (!header.includes(name)) {
      const names = [...header].sort().map((n) => `'${n}'`).join(", ");
      throw new UserError(`${file} has no column '${name}' to keep: choose among [${names}]`);
    }
  }
}

// A record's copied fields as text (``text``: its JSON line, for numbers as written).
export function keptValues(kept, row, lineNumber, record, text) {
  let sources = null;
  const where = `row ${row} (line ${lineNumber})`;
  return kept.fields.map((name) => {
    if (!Object.hasOwn(record, name)) {
      throw new InvalidRecord(row, lineNumber, `${where}, column '${name}': the field is missing`);
    }
    const value = record[name];
    let copied;
    if (typeof value === "string") copied = value;
    else if (value === null) copied = "";
    else if (typeof value === "boolean") copied = value ? "true" : "false";
    else if (typeof value === "number") {
      sources = sources || memberSources(text);
      copied = sources.get(name);
    } else {
      const kind = Array.isArray(value) ? "an array" : "an object";
      throw new InvalidRecord(row, lineNumber,
        `${where}, column '${name}': expected text, a number, true, false or null to copy, got ${kind}`);
    }
    if (name === kept.idColumn && copied === "") {
      throw new InvalidRecord(row, lineNumber, `${where}: the id column '${name}' is empty: every row needs an id`);
    }
    return copied;
  });
}

function keptRecord(row, fields, copied) {
  const out = { row };
  fields.forEach((name, j) => {
    // defineProperty: a field named "__proto__" is copied as data, not as the object's prototype.
    Object.defineProperty(out, name, { value: copied[j], enumerable: true, writable: true, configurable: true });
  });
  return out;
}

// Map of key -> the value's source text, for each member of a JSON object text (valid JSON).
function memberSources(text) {
  const found = new Map();
  const space = (i) => { while (i < text.length && " \t\n\r".includes(text[i])) i += 1; return i; };
  const stringEnd = (i) => { let j = i + 1; while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1; return j + 1; };
  let i = space(0) + 1; // past "{"
  for (;;) {
    i = space(i);
    if (text[i] === "}") return found;
    const keyEnd = stringEnd(i);
    const key = JSON.parse(text.slice(i, keyEnd));
    i = space(space(keyEnd) + 1); // past ":"
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') { i = stringEnd(i); continue; }
      if (c === "{" || c === "[") depth += 1;
      else if ((c === "}" || c === "]") && depth-- === 0) break;
      else if (c === "," && depth === 0) break;
      i += 1;
    }
    found.set(key, text.slice(start, i).trim());
    if (text[i] === ",") i += 1;
  }
}
