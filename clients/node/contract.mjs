// The onnxship contract in plain JavaScript, for every JavaScript client: the Node client
// (score.mjs, onnxruntime-node) and the web page (clients/web, onnxruntime-web) import this one file.
// It imports nothing: reading files or URLs, hashing and the ONNX Runtime build are the caller's
// (passed in), so the same checks, parsing rules and refusals run in Node and in a browser.

export const CONTRACT_VERSION = 1;

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

export function parseJson(text) {
  const value = JSON.parse(text);
  const twice = duplicateKey(text);
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

// A contract file's bytes -> its object: strict UTF-8, JSON without duplicate keys, schema version 1.
export function contractObject(bytes, file) {
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

// The decision rule and the encoding are ones this client implements.
function checkRules(features, metadata) {
  if (metadata.decision_operator !== ">=" || metadata.decision_precision !== "float64") {
    throw new UserError("onnx_metadata.json states a decision rule this client does not implement");
  }
  const threshold = metadata.threshold;
  if (typeof threshold !== "number" || !Number.isFinite(threshold) || threshold < 0 || threshold > 1) {
    // A probability's threshold: outside [0, 1] every row would get the same verdict.
    throw new UserError(`onnx_metadata.json has threshold ${JSON.stringify(threshold)}: it must be a finite number from 0 to 1`);
  }
  const index = metadata.positive_class_index;
  if (!Number.isInteger(index) || index < 0 || index >= metadata.class_order.length) {
    throw new UserError(`onnx_metadata.json has positive_class_index ${JSON.stringify(index)} outside class_order`);
  }
  const cat = features.encoding.categorical;
  if (cat.missing_tokens.length !== 1 || cat.missing_tokens[0] !== cat.missing_value) {
    throw new UserError("onnx_features.json states categorical missing tokens this client does not know");
  }
}

// Reads and checks the contract of an artifacts folder; returns {session, metadata, features, inputs,
// warning}. ``source`` holds what differs between clients:
//   folder, hint (how to point the client at the export's folder), where(name) (a file's name in
//   messages), read(name) -> Promise<Uint8Array or null if absent>, sha256(bytes) -> Promise<hex>,
//   runtime {name, version, override}, versionCheck, createSession(bytes) -> Promise<session>, and
//   optionally model(metadata) -> Promise<{file, sha256}> (another graph, e.g. the INT8 file).
export async function loadContract(source) {
  const objects = {};
  for (const name of ["onnx_features.json", "onnx_metadata.json"]) {
    const bytes = await source.read(name);
    if (bytes === null) throw new UserError(`${source.where(name)} not found: ${source.hint}`);
    objects[name] = { obj: contractObject(bytes, source.where(name)), bytes };
  }
  const features = objects["onnx_features.json"].obj;
  const metadata = objects["onnx_metadata.json"].obj;
  try {
    return await checkedContract(source, features, objects["onnx_features.json"].bytes, metadata);
  } catch (err) {
    if (err instanceof UserError) throw err;
    // A contract file that parses but lacks what it must say (a key missing, a wrong type).
    throw new UserError(
      `${source.folder}/onnx_features.json or onnx_metadata.json is incomplete (${err.message}); `
      + "re-run the export stage (dvc repro)",
    );
  }
}

async function checkedContract(source, features, featuresBytes, metadata) {
  if (await source.sha256(featuresBytes) !== metadata.features_sha256) {
    throw new UserError("onnx_features.json does not match the sha256 in onnx_metadata.json");
  }
  const model = source.model
    ? await source.model(metadata)
    : { file: metadata.model_file, sha256: metadata.model_sha256 };
  const modelBytes = await source.read(model.file);
  if (modelBytes === null) throw new UserError(`${source.where(model.file)} not found`);
  if (await source.sha256(modelBytes) !== model.sha256) {
    throw new UserError(`${source.where(model.file)} does not match the sha256 in ${model.recordedIn || "onnx_metadata.json"}: refusing it`);
  }
  const warning = runtimeWarning(metadata.versions.onnxruntime, source.runtime, source.versionCheck);
  checkRules(features, metadata);
  let session;
  try {
    session = await source.createSession(modelBytes);
  } catch (err) {
    throw new UserError(`${source.folder}: onnxruntime cannot load the model (${String(err.message).split("\n")[0]})`);
  }
  return { session, metadata, features, inputs: converters(features), warning, modelFile: model.file };
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
  // Matched against the whole value, as Python's re.fullmatch does (the v1 pattern is anchored anyway).
  const numberText = new RegExp(`^(?:${numeric.number_pattern})$`);

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
    onnxName: spec.onnx_name,
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
  const { session, metadata, inputs } = contract;
  const n = values.length;
  const feeds = {};
  inputs.forEach((input, j) => {
    const column = values.map((row) => row[j]);
    feeds[input.onnxName] = input.numeric
      ? new Tensor("float32", Float32Array.from(column), [n, 1])
      : new Tensor("string", column, [n, 1]);
  });
  const result = await session.run(feeds, [metadata.probability_output]);
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
