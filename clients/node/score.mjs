#!/usr/bin/env node
// A non-Python client of the onnxship contract: it scores raw records with model.onnx using only
// onnx_features.json and onnx_metadata.json (onnxruntime-node, no other dependency). The contract's
// checks, parsing rules and refusals live in contract.mjs, which the web page (clients/web) shares;
// artifacts.mjs reads a folder on disk with them.
//
//   node score.mjs --artifacts ../../artifacts --input rows.csv --output scores.jsonl [--batch-size 512]
//                  [--version-check strict|warn|off] [--id-column NAME] [--keep a,b]
//
// Input: a CSV with a header (.csv, RFC 4180 quoting) or JSON lines (.jsonl, .ndjson, .json), UTF-8.
// Output: JSON lines {"row", "probability", "decision", "label"} (.jsonl; --id-column and --keep copy
// input fields as text after "row", as the Python scorer does), written to a temp file and
// renamed at the end. Errors: one line "error: ..." on stderr and exit code 2; the input rules (and
// the refusals) are the Python scorer's, checked case by case by tests/corpus.

import {
  closeSync, createReadStream, existsSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync,
} from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import ort from "onnxruntime-node";
import { loadArtifacts } from "./artifacts.mjs";
import {
  csvParser, jsonParser, keepList, passthrough, scoreLines, UserError, utf8Lines,
} from "./contract.mjs";

const USAGE = `usage: node score.mjs --input FILE.csv|.jsonl --output FILE.jsonl [--artifacts DIR]
                      [--batch-size N] [--version-check strict|warn|off] [--id-column NAME] [--keep a,b]

Score raw records with model.onnx and its contract (onnx_features.json, onnx_metadata.json).
  --input FILE          a CSV with a header row, or JSON lines (.jsonl, .ndjson, .json), UTF-8
  --output FILE.jsonl   JSON lines {"row", "probability", "decision", "label"}
  --artifacts DIR       the folder of model.onnx and its contract (default: artifacts)
  --batch-size N        rows per model call (default: 512)
  --version-check MODE  strict (default), warn or off: a contract version this client does not know
  --id-column NAME      copy this input field (as text) into each output line, after "row"
  --keep a,b            copy these input fields too (docs/serving.md: fields copied to the scores)
  --help                print this and exit
Errors: one line "error: ..." on stderr and exit code 2.
`;

function parseArgs(argv) {
  const args = { artifacts: "artifacts", batchSize: 512, versionCheck: "strict" };
  const names = { "--artifacts": "artifacts", "--input": "input", "--output": "output",
    "--batch-size": "batchSize", "--version-check": "versionCheck", "--id-column": "idColumn",
    "--keep": "keep" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) throw new UserError(`unknown or incomplete option ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  if (!args.input || !args.output) throw new UserError("--input and --output are required");
  // Python's int(): ASCII digits, a sign, "_" between digits, white space around; not "1e3" or "5.0".
  const size = String(args.batchSize);
  args.batchSize = /^\s*[+-]?[0-9]+(_[0-9]+)*\s*$/.test(size) ? Number(size.replace(/_/g, "")) : NaN;
  if (!Number.isInteger(args.batchSize) || args.batchSize < 1) {
    throw new UserError(`batch size must be at least 1, got ${JSON.stringify(size)}: a whole number such as 512`);
  }
  if (!["strict", "warn", "off"].includes(args.versionCheck)) {
    throw new UserError("--version-check must be strict, warn or off");
  }
  args.kept = passthrough(args.idColumn, keepList(args.keep));
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

// writeSync may write part of its bytes (a full disk, a file size limit) without an error: write the
// rest, so that the failure surfaces as an error (ENOSPC, EFBIG) rather than a truncated output.
function writeAll(fd, text) {
  const bytes = Buffer.from(text, "utf8");
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}

// Python's Path.resolve(): the deepest existing folder's real path, and the rest as written.
function resolved(file) {
  let head = path.resolve(file);
  const tail = [];
  for (;;) {
    try {
      return path.join(realpathSync(head), ...tail);
    } catch {
      const up = path.dirname(head);
      if (up === head) return path.resolve(file);
      tail.unshift(path.basename(head));
      head = up;
    }
  }
}

// Whether two paths name one file (onnxship.serve.files.same_file): the same inode if both exist
// (a symlink, a hard link, "a/../b"), else the same resolved path.
function sameFile(a, b) {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return resolved(a) === resolved(b);
  }
}

// The checks of onnxship.serve.files.check_outputs, with the same messages.
function checkPaths(args) {
  if (!existsSync(args.input) || !statSync(args.input).isFile()) {
    throw new UserError(`input file ${args.input} not found`);
  }
  if (sameFile(args.output, args.input)) {
    throw new UserError("the output file is the input file: write the output to another file");
  }
  if (existsSync(args.output) && statSync(args.output).isDirectory()) {
    throw new UserError(`the output ${args.output} is a folder: name a file to write`);
  }
  const folder = path.dirname(args.output);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new UserError(`the folder of ${args.output} does not exist: create ${folder} first`);
  }
  return folder;
}

async function main(argv, stderr) {
  const args = parseArgs(argv);
  const folder = checkPaths(args);
  const contract = await loadArtifacts(args.artifacts, args.versionCheck);
  if (contract.warning) stderr(`warning: ${contract.warning}`);
  const parse = args.inputFormat === "csv"
    ? csvParser(contract.inputs.map((input) => input.name), args.input, args.kept.fields)
    : jsonParser();
  // Stream the input line by line and score it in batches: a large file is never held whole.
  const tmp = path.join(folder, `.${path.basename(args.output)}.${process.pid}.tmp`);
  const out = openSync(tmp, "w");
  try {
    await scoreLines(contract, ort.Tensor, utf8Lines(createReadStream(args.input), args.input), {
      parse,
      batchSize: args.batchSize,
      kept: args.kept,
      onBatch: (rows) => writeAll(out, rows.map((r) => JSON.stringify(r)).join("\n") + "\n"),
    });
    closeSync(out);
    renameSync(tmp, args.output);
  } catch (err) {
    try { closeSync(out); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    if (err && err.syscall && !err.path) { // writing the output: a full disk, a file size limit
      throw new UserError(`cannot write ${args.output}: ${FS_ERRORS[err.code] || "failed"} (${err.code})`);
    }
    throw err;
  } finally {
    await contract.session.release();
  }
}

// File-system failures are the user's to fix (a path, a permission): one line, exit code 2.
const FS_ERRORS = { ENOENT: "not found", EACCES: "permission denied", EPERM: "permission denied",
  EISDIR: "is a folder", ENOTDIR: "a part of the path is not a folder", EROFS: "read-only file system",
  ENOSPC: "no space left on the device", EIO: "input/output error", ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the name is too long", EMFILE: "too many open files", EXDEV: "another file system",
  EFBIG: "file too large" };

// Runs the command line ``argv`` (without "node score.mjs"); returns the exit code. Messages go to
// ``stderr`` (a function of one line): one "error: ..." line and 2 for the user's mistakes.
export async function run(argv, write = (line) => process.stderr.write(`${line}\n`)) {
  // One line each, whatever the input held: control and line-separator characters escaped (Python's
  // messages quote values with repr, which escapes them too).
  const stderr = (line) => write(line.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    await main(argv, stderr);
    return 0;
  } catch (err) {
    if (err instanceof UserError) {
      stderr(`error: ${err.message}`);
      return 2;
    }
    if (err && FS_ERRORS[err.code]) {
      stderr(`error: ${err.path || ""}: ${FS_ERRORS[err.code]} (${err.code})`);
      return 2;
    }
    if (err && typeof err.code === "string" && err.syscall) { // any other system call's failure
      stderr(`error: ${err.path ? `${err.path}: ` : ""}${err.syscall} failed (${err.code})`);
      return 2;
    }
    if (err instanceof RangeError && /call stack|memory|Invalid string length|Invalid array length/i.test(err.message)) {
      stderr(`error: the input is too large or nests too deeply to be read (${err.message})`);
      return 2;
    }
    // Anything else is a bug of this client: one line still, and exit code 1 (not the user's input).
    stderr(`error: unexpected failure, please report it: ${String(err && err.message).split("\n")[0]}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exit(await run(process.argv.slice(2)));
}
