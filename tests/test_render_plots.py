"""`dvc plots diff` drawn offline as static SVG (tools/svg_plots.py, tools/render_plots.py --diff)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tools import svg_plots


def spec(values: list[dict], **encoding) -> dict:
    """A filled spec as `dvc plots diff --json` gives it for our log_lines template."""
    return {
        "title": "p50 latency",
        "width": 400,
        "height": 300,
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "batch_size", "title": "batch_size", "scale": {"type": "log"}},
            "y": {"field": "dvc_inferred_y_value", "title": "p50 (us)", "scale": {"type": "log"}},
            **encoding,
        },
        "data": {"values": values},
    }


ROWS = [
    {"batch_size": str(b), "dvc_inferred_y_value": str(v), "rev": rev, "field": column}
    for rev, scale in (("main", 1.0), ("workspace", 2.0))
    for column, base in (("sklearn", 1000.0), ("onnx", 10.0))
    for b, v in ((1, base * scale), (10, 10 * base * scale), (100, 100 * base * scale))
]


def test_a_plot_is_one_series_per_revision_and_column_on_log_axes():
    plot = svg_plots.read_spec(spec(ROWS))
    assert list(plot.series) == [
        ("main", "sklearn"),
        ("main", "onnx"),
        ("workspace", "sklearn"),
        ("workspace", "onnx"),
    ]
    assert (
        plot.x.log
        and plot.y.log
        and (plot.x.low, plot.x.high) == (1, 100)
        and (plot.y.low, plot.y.high) == (10, 200_000)
    )
    assert plot.x.ticks() == [1, 10, 100]
    canvas = svg_plots.Canvas(plot)
    # Log scale: batch 10 sits halfway between 1 and 100; y = 10 (the lowest) on the frame's bottom.
    assert canvas.xy(10, 10) == (svg_plots.MARGIN["left"] + 200, svg_plots.MARGIN["top"] + 300)
    assert canvas.xy(0, 10) is None  # no place on a log axis


def test_the_svg_has_a_legend_entry_per_revision_and_no_script_or_network():
    svg = svg_plots.draw(svg_plots.read_spec(spec(ROWS)))
    assert re.findall(r'class="revision">([^<]+)<', svg) == ["main", "workspace"]
    assert svg.count("<polyline") == 4
    # Each revision has its own colour, each column its own dash pattern.
    colours = dict(
        re.findall(
            r'<rect x="[\d.]+" y="[\d.]+" width="14" height="10" fill="(#\w+)"/>\s*<text[^>]*>(\w+)<', svg
        )
    )
    assert len(colours) == 2
    assert svg.count('stroke-dasharray="8 4"') == 3  # onnx: two lines and its legend sample
    page = svg_plots.page({"latency": spec(ROWS)}, "dvc plots diff main")
    assert "<script" not in page and "https://" not in page


def test_a_curve_with_its_threshold_point_is_a_step_line_and_a_diamond_per_revision():
    values = [
        {"fpr": "0", "tpr": "0", "point": "0", "rev": "HEAD"},
        {"fpr": "0.5", "tpr": "0.8", "point": "0", "rev": "HEAD"},
        {"fpr": "1", "tpr": "1", "point": "0", "rev": "HEAD"},
        {"fpr": "0.2", "tpr": "0.7", "point": "1", "rev": "HEAD"},
        {"fpr": "0", "tpr": "0", "point": "0", "rev": "main"},
        {"fpr": "1", "tpr": "", "point": "0", "rev": "main"},  # an empty cell is skipped
    ]
    curve = {
        "title": {"text": "ROC"},
        "encoding": {
            "x": {"field": "fpr", "scale": {"domain": [0, 1]}},
            "y": {"field": "tpr", "scale": {"domain": [0, 1]}},
        },
        "layer": [{"mark": {"type": "line", "interpolate": "step-after"}}, {"mark": {"type": "point"}}],
        "data": {"values": values},
    }
    plot = svg_plots.read_spec(curve)
    assert plot.step and plot.title == "ROC" and plot.points == {"HEAD": [(0.2, 0.7)]}
    assert plot.series[("main", "")] == [(0.0, 0.0)]
    svg = svg_plots.draw(plot)
    assert "chosen threshold" in svg and re.findall(r'class="revision">([^<]+)<', svg) == ["HEAD", "main"]


@pytest.mark.e2e
def test_render_plots_diff_draws_two_git_revisions_offline(compared_project, tmp_path):
    # Two revisions of the project (a model per branch, tests/conftest.py): main and HEAD.
    project, out = compared_project.root, tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tools.render_plots", "--diff", "main", "HEAD", "--out", str(out)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text()
    assert page.count("<svg") == 4 and "<script" not in page and "https://" not in page
    for name in ("latency", "roc", "precision_recall", "prob_diff"):
        figure = page.split(f'<figure id="{name}">', 1)[1].split("</figure>", 1)[0]
        assert re.findall(r'class="revision">([^<]+)<', figure) == ["main", "HEAD"], name
    latency = page.split('<figure id="latency">', 1)[1].split("</figure>", 1)[0]
    assert latency.count("<polyline") == 6  # 3 backends x 2 revisions
