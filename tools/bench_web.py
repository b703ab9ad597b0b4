"""Rows per second of the web client in a real browser next to the Node client, on this machine.

    python -m tools.bench_web [--artifacts artifacts] [--rows 4096] [--repetitions 5] [--write]
                              [--screenshot docs/img/web-client.png]

Both run the same scoring path (clients/node/contract.mjs's scoreLines: CSV parsing, the contract's
checks, one [n, 1] tensor per input, session.run, the decision rule) on the same CSV held in memory
(the artifacts' test.csv repeated to ``--rows`` rows), the model loaded and one untimed pass done
first, on one thread: the browser through ``window.onnxshipScore`` (onnxruntime-web, WASM, in
Debian's Chromium), Node through clients/node/bench.mjs (onnxruntime-node, native). At batch 1 every
row is its own session.run; at batch 1,024 the rows go 1,024 at a time. The median of
``--repetitions`` runs; the two clients take turns cell by cell, so a change of the machine's load
falls on both alike.

``--write`` puts the table (with the load average, which the figures depend on) into
docs/benchmark.md between its web-client markers; ``--screenshot`` saves the page with test.csv
scored, for docs/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import web_page

REPO = web_page.REPO
DOC = REPO / "docs" / "benchmark.md"
START, END = "<!-- web-client benchmark: start -->", "<!-- web-client benchmark: end -->"
BACKENDS = ("fp32", "int8")
BATCHES = (1, 1024)
WEB, NODE = "web page (Chromium)", "Node"
PAGE_SCORE = """async ([csv, batchSize]) => {
    const start = performance.now();
    await window.onnxshipScore(csv, {batchSize});
    return (performance.now() - start) / 1000;
}"""


def repeated_csv(test_csv: Path, rows: int) -> str:
    """test.csv's header and its data rows repeated until ``rows`` rows."""
    header, *data = test_csv.read_text(encoding="utf-8").splitlines()
    return "\n".join([header, *(data[i % len(data)] for i in range(rows))]) + "\n"


def open_pages(browser, base: str) -> dict:
    """One verified page per backend."""
    pages = {}
    for backend in BACKENDS:
        page, ready = web_page.open_page(browser, web_page.page_url(base, web_page.MOUNT, backend))
        if "error" in ready:
            raise SystemExit(f"the page refused the artifacts: {ready['error']}")
        pages[backend] = page
    return pages


def node_seconds(client: Path, source: Path, backend: str, batch: int) -> float:
    """One timed pass of clients/node/bench.mjs (the model loaded before the clock starts)."""
    argv = ["--artifacts", str(source.parent), "--input", str(source), "--backend", backend]
    argv += ["--batch-size", str(batch), "--repetitions", "1"]
    command = ["node", str(client / "bench.mjs"), *argv]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["seconds"][
        0
    ]


def measure(browser, base: str, source: Path, repetitions: int) -> dict[str, dict]:
    """{client: {(backend, batch): [seconds per repetition]}}. The two clients take turns, cell by
    cell, round after round, so a change of the machine's load falls on both alike."""
    client = web_page.install_client(REPO / "clients" / "node", "onnxruntime-node")
    csv = source.read_text(encoding="utf-8")
    pages = open_pages(browser, base)
    figures: dict[str, dict] = {WEB: {}, NODE: {}}
    for backend in BACKENDS:  # one untimed pass per cell: the JIT warmed up (bench.mjs does the same)
        for batch in BATCHES:
            pages[backend].evaluate(PAGE_SCORE, [csv, batch])
    for _ in range(repetitions):
        for backend in BACKENDS:
            for batch in BATCHES:
                cell = (backend, batch)
                figures[WEB].setdefault(cell, []).append(pages[backend].evaluate(PAGE_SCORE, [csv, batch]))
                figures[NODE].setdefault(cell, []).append(node_seconds(client, source, *cell))
    for page in pages.values():
        page.close()
    return figures


def table(rows: int, figures: dict[str, dict], context: str) -> str:
    """The markdown block written into docs/benchmark.md: rows/s, the median of the runs."""
    runs = len(next(iter(figures[WEB].values())))
    lines = [
        START,
        f"Rows per second scoring {rows:,} CSV rows held in memory (median of {runs} runs);",
        f"{context}:",
        "",
        "| client | runtime | backend | batch 1 | batch 1,024 |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for client, runtime in ((WEB, "onnxruntime-web, WASM"), (NODE, "onnxruntime-node")):
        for backend in BACKENDS:
            cells = [f"{rows / statistics.median(figures[client][backend, b]):,.0f}" for b in BATCHES]
            lines.append(f"| {client} | {runtime} | {backend.upper()} | {' | '.join(cells)} |")
    return "\n".join([*lines, END])


def write_doc(block: str) -> None:
    text = DOC.read_text()
    if START in text:
        text = text.split(START)[0] + block + text.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## The web client\n\n" + block + "\n"  # first run: a new section
    DOC.write_text(text)


def screenshot(browser, base: str, test_csv: Path, path: Path) -> None:
    """The page with test.csv scored and the model card drawn."""
    page, ready = web_page.open_page(
        browser, web_page.page_url(base, web_page.MOUNT), {"width": 1200, "height": 940}
    )
    if "error" in ready:
        raise SystemExit(f"the page refused the artifacts: {ready['error']}")
    page.set_input_files("#file", str(test_csv))
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_selector("#card[data-ready=true]")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", default="artifacts", help="a built artifacts folder")
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmark.md")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the page here")
    args = parser.parse_args(argv)
    artifacts = Path(args.artifacts).resolve()
    why_not = web_page.missing_browser() or (None if shutil.which("node") else "node is not on PATH")
    if why_not or not (artifacts / "test.csv").is_file():
        print(f"error: {why_not or f'{artifacts}/test.csv not found: run dvc repro first'}", file=sys.stderr)
        return 2
    web_page.install_client()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, web_page.chromium() as browser:
        # The input sits beside a copy of the artifacts, which the server mounts for the page.
        folder = Path(shutil.copytree(artifacts, Path(tmp) / "artifacts"))
        source = folder / "bench_rows.csv"
        source.write_text(repeated_csv(artifacts / "test.csv", args.rows), encoding="utf-8")
        with web_page.static_server(folder) as base:
            figures = measure(browser, base, source, args.repetitions)
            if args.screenshot:
                screenshot(browser, base, artifacts / "test.csv", args.screenshot)
        node = subprocess.check_output(["node", "--version"], text=True).strip()
        context = f"Chromium {browser.version}, Node {node}, 1 thread, {os.cpu_count()} cores"
    block = table(
        args.rows, figures, f"{context}, load average {load_before:.1f} to {os.getloadavg()[0]:.1f}"
    )
    print(block)
    if args.write:
        write_doc(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
