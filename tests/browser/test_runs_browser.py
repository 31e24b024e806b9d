"""The Runs page in Chromium: history chart with a flagged drop, and a diff of two runs."""

from __future__ import annotations

import pytest
from browser_support import screenshot, wait_for_app
from playwright.sync_api import expect

from cowdemo.runs import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_runs_page_shows_history_chart_drop_and_diff(page, server_factory, tmp_path):
    data = tmp_path / "data"
    store = RunStore(f"sqlite:///{data / 'runs.sqlite'}")
    for t, (model, ap50) in enumerate([("coco", 0.13), ("tuned", 0.23), ("tuned", 0.40),
                                       ("tuned", 0.31)]):
        store.record("evaluation", model, {"AP50": ap50, "AP": ap50 / 2}, dataset="cows",
                     created_at=1_700_000_000 + t * 3600)
    server = server_factory(COWDEMO_DATA=str(data))
    page.goto(f"{server.url}/runs")
    wait_for_app(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    expect(page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')).to_have_count(1)
    legend = page.locator('[data-testid="stPlotlyChart"] .legendtext').evaluate_all(
        "nodes => nodes.map(n => n.textContent)"
    )
    assert "tuned on cows" in legend and "tuned on cows drops" in legend
    page.get_by_text("1 drop(s) over the tolerance: run 4 (tuned on cows) −0.0900").wait_for()
    page.get_by_role("heading", name="Compare two runs").wait_for()
    page.get_by_text("Images whose outcome changed: 0").wait_for()
    assert page.locator('[data-testid="stDataFrame"]').count() >= 2
    screenshot(page, "runs")
