"""The web client (clients/web) in a real browser: a static server at the repository root, Debian's
Chromium driven by Playwright for Python, and the page's own API (``window.onnxshipReady``,
``window.onnxshipScore``). Used by tests/test_web.py and tools/bench_web.py.

No browser download: Playwright drives the system's Chromium (``apt-get install -y chromium``), and
onnxruntime-web comes from npm (``npm ci`` in clients/web), served by the same server (no CDN).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "clients" / "web"
CHROMIUM = Path(os.environ.get("ONNXSHIP_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = "install one with `apt-get install -y chromium` (Debian; CI's .ci/run does)"
MOUNT = "/_mounted/"  # URL prefix of the extra folder the server serves (artifacts outside the repo)


def missing_browser(browser: Path = CHROMIUM) -> str | None:
    """Why the page cannot be driven here (no Chromium, no Playwright), or None."""
    if not browser.is_file():
        return f"no browser at {browser}: {INSTALL_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: pip install -r requirements.txt"
    return None


def install_client(client: Path = CLIENT, package: str = "onnxruntime-web") -> Path:
    """A JavaScript client (clients/web by default) with its locked npm packages installed (`npm ci
    --ignore-scripts`: no install script downloads anything), unless ``package``'s locked version is
    already there."""
    lock = json.loads((client / "package-lock.json").read_text())
    wanted = lock["packages"][f"node_modules/{package}"]["version"]
    installed = client / "node_modules" / package / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        if shutil.which("npm") is None:
            raise RuntimeError(f"npm is not on PATH: {client} needs npm to install {package}")
        result = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=client,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm ci failed in {client}:\n{result.stdout}\n{result.stderr}")
    return client


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from the repository root, plus ``MOUNT`` -> another folder; quiet."""

    mounted: Path | None = None  # served under MOUNT; the rest as `python -m http.server` serves it

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0])
        if self.mounted is not None and clean.startswith(MOUNT):
            parts = [p for p in clean[len(MOUNT) :].split("/") if p not in ("", ".", "..")]
            return str(self.mounted.joinpath(*parts))
        return super().translate_path(path)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def static_server(mounted: Path | None = None) -> Iterator[str]:
    """A static server on 127.0.0.1 at the repository root (``mounted`` under ``MOUNT``), in a
    thread; yields its base URL."""
    handler = type("Handler", (_Handler,), {"mounted": mounted})
    serve = functools.partial(handler, directory=str(REPO))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    """The system's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def page_url(base: str, artifacts: str, backend: str | None = None) -> str:
    """The page's URL for an artifacts folder (a URL path, e.g. ``MOUNT + "built/"``)."""
    url = f"{base}/clients/web/index.html?artifacts={artifacts}"
    return url + (f"&backend={backend}" if backend else "")


def open_page(browser: Any, url: str, viewport: dict | None = None) -> tuple[Any, dict]:
    """A new page at ``url`` once ``onnxshipReady`` settled: (page, {"ok": info} or {"error": line})."""
    page = browser.new_page(viewport=viewport or {"width": 1200, "height": 820})
    page.goto(url)
    page.wait_for_function("window.onnxshipReady !== undefined")
    return page, page.evaluate("window.onnxshipReady.then(ok => ({ok}), e => ({error: e.message}))")


def score(page: Any, csv: bytes, batch_size: int = 1024) -> dict:
    """``onnxshipScore`` on the bytes of a CSV: {"rows", "invalid"} or {"error": the one line}."""
    return page.evaluate(  # the bytes travel as base64: a list of numbers is slow to pass
        """([base64, batchSize]) => {
            const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
            return window.onnxshipScore(bytes, {batchSize}).then(r => r, e => ({error: e.message}));
        }""",
        [base64.b64encode(csv).decode("ascii"), batch_size],
    )
