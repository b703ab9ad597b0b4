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
  closeSync, createReadStream, existsSync, openSync, renameSync, rmSync, statSync, writeSync,
} from "node:fs";
import path from "node:path";
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
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
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
  args.batchSize = Number(args.batchSize);
  if (!Number.isInteger(args.batchSize) || args.batchSize < 1) {
    throw new UserError(`batch size must be at least 1, got ${args.batchSize}`);
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
  const contract = await loadArtifacts(args.artifacts, args.versionCheck);
  if (contract.warning) process.stderr.write(`warning: ${contract.warning}\n`);
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
      onBatch: (rows) => writeSync(out, rows.map((r) => JSON.stringify(r)).join("\n") + "\n"),
    });
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
