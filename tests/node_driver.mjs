// Runs the Node client's command line many times in one process, for tests that run it often
// (tests/test_fuzz.py): one JSON array of arguments per stdin line -> one JSON line
// {"code", "stderr"} on stdout. Starting Node with onnxruntime-node costs about 0.2 s; a run here
// costs what the client's own work costs.
import { createInterface } from "node:readline";
import { run } from "../clients/node/score.mjs";

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  const lines = [];
  const code = await run(JSON.parse(line), (text) => lines.push(text));
  process.stdout.write(`${JSON.stringify({ code, stderr: lines.join("\n") })}\n`);
}
