// The model card: what the pipeline recorded about the model the page scores with, read from the
// same artifacts folder (lineage.json, parity_report.json, benchmark.json, recommendation.json,
// plots/roc.csv and plots/pr.csv). The curves are inline SVG drawn here: no chart library, no CDN.
// A file that is absent (a folder holding only the served files) leaves its part of the card out.

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text = null) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

function table(head, rows) {
  const t = el("table");
  const tr = el("tr");
  head.forEach((h) => tr.append(el("th", {}, h)));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(tr);
  rows.forEach((cells) => {
    const row = el("tr");
    cells.forEach((c) => row.append(el("td", {}, String(c))));
    t.tBodies[0].append(row);
  });
  return t;
}

const fmt = (x, digits = 4) => (typeof x === "number" ? x.toFixed(digits) : "?");

async function readJson(base, name, fetchBytes) {
  const bytes = await fetchBytes(new URL(name, base));
  return bytes === null ? null : JSON.parse(new TextDecoder().decode(bytes));
}

async function readCsv(base, name, fetchBytes) {
  const bytes = await fetchBytes(new URL(name, base));
  if (bytes === null) return null;
  const [header, ...lines] = new TextDecoder().decode(bytes).trim().split("\n");
  const names = header.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((v, i) => [names[i], Number(v)])));
}

function modelSection(lineage) {
  const section = el("section");
  section.append(el("h3", {}, "Model"));
  const chosen = lineage.chosen || {};
  const scores = lineage.test_scores || {};
  const split = lineage.split || {};
  section.append(el("p", {}, `${chosen.family} (${chosen.iterations ?? "?"} iterations), chosen by `
    + `${lineage.cv?.folds}-fold CV on ${split.train_rows} rows; threshold ${fmt(lineage.threshold?.value)} `
    + `(maximizes ${lineage.threshold?.objective} out of fold).`));
  section.append(table(
    [`held-out (${split.test_rows} rows)`, "ROC AUC", "average precision", "F1", "precision", "recall"],
    [["test split", fmt(scores.roc_auc), fmt(scores.average_precision), fmt(scores.f1),
      fmt(scores.precision), fmt(scores.recall)]],
  ));
  return section;
}

function paritySection(report) {
  const section = el("section");
  section.append(el("h3", {}, `Parity: ${report.passed ? "passed" : "FAILED"}`));
  const rows = Object.entries(report.backends).map(([name, b]) => [
    name === "onnx" ? "ONNX FP32" : name.toUpperCase(),
    b.passed ? "passed" : `failed: ${(b.reasons || []).join("; ")}`,
    b.max_abs_diff.toExponential(2),
    `${(100 * b.agreement).toFixed(2)} %`,
    b.deployable === false ? "no" : "yes",
  ]);
  section.append(table(["backend vs scikit-learn", "verdict", "max |diff|", "decisions agree", "deployable"], rows));
  return section;
}

function benchmarkSection(benchmark, recommendation) {
  const section = el("section");
  section.append(el("h3", {}, "Speed (p50 speed-up over scikit-learn, 1 thread)"));
  const speedups = benchmark.speedup_p50_vs_sklearn.end_to_end;
  const batches = Object.keys(Object.values(Object.values(speedups)[0])[0]);
  const rows = Object.entries(speedups).map(([name, threads]) => {
    const byBatch = threads.threads_1 || Object.values(threads)[0];
    return [name === "onnx" ? "ONNX FP32" : name.toUpperCase(), ...batches.map((b) => `${byBatch[b]}x`)];
  });
  section.append(table(["end to end", ...batches.map((b) => b.replace("batch_", "batch "))], rows));
  if (recommendation) {
    section.append(el("p", { class: "recommend" },
      `Recommended: ${recommendation.choice_name} at batch ${recommendation.serving_batch_size}.`));
    const reasons = el("ul");
    (recommendation.reasons || []).forEach((r) => reasons.append(el("li", {}, r)));
    section.append(reasons);
  }
  return section;
}

// One curve as an SVG: x and y in [0, 1], the point the threshold gives marked with a dot.
function curve(points, { x, y, title, xLabel, yLabel }) {
  const size = 220;
  const pad = 34;
  const sx = (v) => pad + v * (size - pad - 8);
  const sy = (v) => size - pad - v * (size - pad - 8);
  const svg = el("svg:svg", { viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: "img" });
  svg.append(el("svg:title", {}, title));
  svg.append(el("svg:rect", { x: sx(0), y: sy(1), width: sx(1) - sx(0), height: sy(0) - sy(1), class: "frame" }));
  for (const v of [0, 0.5, 1]) {
    svg.append(el("svg:text", { x: sx(v), y: size - pad + 14, class: "tick", "text-anchor": "middle" }, v));
    svg.append(el("svg:text", { x: pad - 4, y: sy(v) + 4, class: "tick", "text-anchor": "end" }, v));
  }
  svg.append(el("svg:text", { x: sx(0.5), y: size - 4, class: "axis", "text-anchor": "middle" }, xLabel));
  svg.append(el("svg:text", {
    x: 10, y: sy(0.5), class: "axis", "text-anchor": "middle", transform: `rotate(-90 10 ${sy(0.5)})`,
  }, yLabel));
  const line = points.filter((p) => p.point !== 1); // the threshold's own row is listed last
  const path = line.map((p, i) => `${i ? "L" : "M"}${sx(p[x]).toFixed(1)},${sy(p[y]).toFixed(1)}`).join("");
  svg.append(el("svg:path", { d: path, class: "curve" }));
  const mark = points.find((p) => p.point === 1);
  if (mark) {
    svg.append(el("svg:circle", { cx: sx(mark[x]), cy: sy(mark[y]), r: 4.5, class: "mark" }));
    const left = mark[x] > 0.5; // the label on the side with room
    svg.append(el("svg:text", {
      x: sx(mark[x]) + (left ? -7 : 7), y: sy(mark[y]) + 14, class: "tick", "text-anchor": left ? "end" : "start",
    },
      `threshold ${fmt(mark.threshold, 3)}`));
  }
  return svg;
}

function curvesSection(roc, pr) {
  const section = el("section", { class: "curves" });
  section.append(el("h3", {}, "Held-out curves (dot: the threshold)"));
  if (roc) section.append(curve(roc, { x: "fpr", y: "tpr", title: "ROC", xLabel: "false positive rate", yLabel: "true positive rate" }));
  if (pr) section.append(curve(pr, { x: "recall", y: "precision", title: "Precision-recall", xLabel: "recall", yLabel: "precision" }));
  return section;
}

export async function renderCard(card, base, { fetchBytes }) {
  const [lineage, parity, benchmark, recommendation, roc, pr] = await Promise.all([
    readJson(base, "lineage.json", fetchBytes),
    readJson(base, "parity_report.json", fetchBytes),
    readJson(base, "benchmark.json", fetchBytes),
    readJson(base, "recommendation.json", fetchBytes),
    readCsv(base, "plots/roc.csv", fetchBytes),
    readCsv(base, "plots/pr.csv", fetchBytes),
  ]);
  const parts = [];
  if (lineage) parts.push(modelSection(lineage));
  if (roc || pr) parts.push(curvesSection(roc, pr));
  if (parity) parts.push(paritySection(parity));
  if (benchmark) parts.push(benchmarkSection(benchmark, recommendation));
  if (!parts.length) parts.push(el("p", {}, "No pipeline reports in this folder: only the contract."));
  card.replaceChildren(el("h2", {}, "Model card"), ...parts);
  card.dataset.ready = "true";
}
