#!/usr/bin/env node
// Rows per second of the Node client's scoring path (parse, check, tensors, run, decision: the
// scoreLines of contract.mjs that the web page runs too) on a CSV held in memory, the model loaded
// once and one untimed pass first (the JIT warmed up, as in a running service). tools/bench_web.py
// runs it next to the same measure in the browser.
//
//   node bench.mjs --artifacts DIR --input rows.csv --backend fp32|int8 --batch-size N --repetitions R
//
// Prints one JSON line: {"rows": rows per repetition, "seconds": [one time per repetition]}.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import ort from "onnxruntime-node";
import { loadArtifacts } from "./artifacts.mjs";
import { csvParser, scoreLines, utf8Lines } from "./contract.mjs";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const contract = await loadArtifacts(args.artifacts, "warn", args.backend || "fp32");
const bytes = readFileSync(args.input);
const seconds = [];
let rows = 0;
for (let r = -1; r < Number(args.repetitions || 5); r += 1) { // r = -1: the untimed pass
  rows = 0;
  const start = performance.now();
  await scoreLines(contract, ort.Tensor, utf8Lines([bytes], args.input), {
    parse: csvParser(contract.inputs.map((input) => input.name), args.input),
    batchSize: Number(args["batch-size"] || 1024),
    onBatch: (scored) => { rows += scored.length; },
  });
  if (r >= 0) seconds.push((performance.now() - start) / 1000);
}
process.stdout.write(`${JSON.stringify({ rows, seconds })}\n`);
