"""End to end in headless Chromium: start a small fine-tune from the Fine-tune page, watch the
progress and the loss chart move, reload the page and find the job still running and reported,
then stop it (it saves a checkpoint)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from browser_support import click_until, copy_model, fill_field, screenshot, wait_for_app
from training_support import BASE_FILE

from cowdemo.training.jobs import Job

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROGRESS = re.compile(r"iteration (\d+) of 200")
LOSS_TITLE = re.compile(r"Loss \(iteration (\d+)\)")


def _iteration(page, selector: str, pattern: re.Pattern) -> int:
    texts = page.locator(selector).all_inner_texts()
    found = [int(m.group(1)) for t in texts for m in [pattern.search(t)] if m]
    return max(found, default=-1)


def _wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _kill_jobs(data: Path) -> None:
    """End the job processes this test started that still run (their lock is held)."""
    for folder in (data / "jobs").glob("*"):
        job = Job(folder.name, folder)
        if job.running() and job.pid:
            os.kill(job.pid, signal.SIGKILL)


def test_start_watch_reload_and_stop_a_job(page, server_factory, demo_checkpoints, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    copy_model(demo_checkpoints / BASE_FILE, checkpoints)
    data = tmp_path / "data"
    server = server_factory(COWDEMO_CHECKPOINTS=str(checkpoints), COWDEMO_DATA=str(data),
                            COWDEMO_RUNS_DB=f"sqlite:///{data / 'runs.sqlite'}")
    try:
        page.goto(f"{server.url}/fine-tune")
        wait_for_app(page)
        page.get_by_role("heading", name="🎯 Fine-tune").wait_for()
        for label, value in (("Iterations", "200"), ("Image size", "128"),
                             ("New model name", "browser-cows")):
            fill_field(page, page.get_by_label(label, exact=True), value)
        click_until(page, page.get_by_role("button", name="Start fine-tuning"),
                    page.get_by_text(re.compile(r"browser-cows · ")))

        progress = '[data-testid="stProgress"]'
        first = _wait_until(lambda: _iteration(page, progress, PROGRESS) >= 1, 240,
                            "the first iterations")
        chart = '[data-testid="stPlotlyChart"]'
        seen = _wait_until(lambda: _iteration(page, chart, LOSS_TITLE) >= 1, 120,
                           "the loss chart")
        screenshot(page, "finetune-running")
        later = _wait_until(lambda: (n := _iteration(page, chart, LOSS_TITLE)) > seen and n,
                            120, "the loss chart to move")
        assert later > seen and _iteration(page, progress, PROGRESS) > first - 1
        page.get_by_text(re.compile(r"s/iteration · ETA")).first.wait_for()

        page.reload()
        wait_for_app(page)
        # any state of a running job (the status file says what it does at that instant)
        page.get_by_text(re.compile(
            r"browser-cows · (training|evaluat\w+|saving|importing|starting)")).wait_for()
        after_reload = _wait_until(lambda: (n := _iteration(page, progress, PROGRESS)) >= 0
                                   and n + 1, 60, "the job after the reload") - 1
        assert after_reload >= later - 1, "the same job, still going"
        assert server.alive()
        screenshot(page, "finetune-reloaded")

        click_until(page, page.locator('[data-testid="stMainBlockContainer"]')
                    .get_by_role("button", name="Stop"),
                    page.get_by_text(re.compile(r"browser-cows · stopped")), timeout=120_000)
        page.get_by_role("button", name="Resume").wait_for()
        screenshot(page, "finetune-stopped")
        assert (checkpoints / "browser-cows.training" / "last.pt").is_file()
    finally:
        _kill_jobs(data)
