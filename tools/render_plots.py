"""Render `dvc plots show` or `dvc plots diff` into one self-contained HTML file that needs no network.

DVC's page loads Vega from a CDN; on a machine without internet the plots stay blank.
- `show`: installs the pinned Vega libraries with npm (tools/plots/package-lock.json), inlines them
  into an HTML template, and runs `dvc plots show --html-template` with it (interactive plots).
- `--diff [REV ...]`: runs `dvc plots diff REV ... --json` and draws each plot as static SVG
  (tools/svg_plots.py: no JavaScript, no npm), one colour per revision, named in a legend.

    python -m tools.render_plots                     # dvc plots show -> dvc_plots/index.html
    python -m tools.render_plots --diff main         # workspace vs main
    python -m tools.render_plots --diff v1 v2 --out DIR
"""

from __future__ import annotations

import argparse
import json
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


def render_diff(revisions: list[str], out: Path) -> int:
    """`dvc plots diff REVISIONS` drawn as static SVG into ``out``/index.html."""
    # `python tools/render_plots.py` (the older spelling) puts tools/ first on sys.path, not the root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tools import svg_plots

    result = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "diff", *revisions, "--json"], capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        return result.returncode
    plots = json.loads(result.stdout)
    for error in plots.get("errors", []) or []:
        print(f"warning: dvc plots diff: {error}", file=sys.stderr)
    specs = {
        name: rendered["content"]
        for name, renders in plots.get("data", {}).items()
        for rendered in renders
        if rendered.get("type") == "vega"
    }
    out.mkdir(parents=True, exist_ok=True)
    heading = "dvc plots diff " + (" ".join(revisions) or "HEAD") + " (and the workspace)"
    (out / "index.html").write_text(svg_plots.page(specs, heading), encoding="utf-8")
    print(out / "index.html")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="dvc_plots", help="output folder (default: dvc_plots)")
    parser.add_argument(
        "--diff",
        nargs="*",
        metavar="REV",
        help="compare revisions, as `dvc plots diff REV ...` (none: the workspace vs HEAD), as static SVG",
    )
    args = parser.parse_args()
    if args.diff is not None:
        return render_diff(args.diff, Path(args.out))
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as handle:
        handle.write(template())
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--html-template", handle.name, "-o", args.out]
    )
    Path(handle.name).unlink()
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
