"""Render `dvc plots show` into one self-contained HTML file that needs no network.

DVC's page loads Vega from a CDN; on a machine without internet the plots stay blank. This tool
installs the pinned Vega libraries with npm (tools/plots/package-lock.json), inlines them into an
HTML template, and runs `dvc plots show --html-template` with it.

    python tools/render_plots.py            # writes dvc_plots/index.html
    python tools/render_plots.py --out DIR
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "plots"
LIBRARIES = [
    "vega/build/vega.min.js",
    "vega-lite/build/vega-lite.min.js",
    "vega-embed/build/vega-embed.min.js",
]


def template() -> str:
    """DVC's page layout with the libraries inline; DVC replaces {plot_divs} with the plots."""
    if not (HERE / "node_modules").exists():
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE, check=True)
    scripts = "\n".join(
        "<script>" + (HERE / "node_modules" / lib).read_text().replace("</script", "<\\/script") + "</script>"
        for lib in LIBRARIES
    )
    head = "<!DOCTYPE html>\n<html>\n<head>\n<title>DVC Plot</title>\n" + scripts + "\n</head>\n"
    return head + "<body>\n{plot_divs}\n</body>\n</html>\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="dvc_plots", help="output folder (default: dvc_plots)")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as handle:
        handle.write(template())
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--html-template", handle.name, "-o", args.out]
    )
    Path(handle.name).unlink()
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
