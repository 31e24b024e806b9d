"""The regression gate and run diffs on a real SQLite run history, through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cowdemo.errors import CowdemoError
from cowdemo.regression import check, diff_runs, flag_drops
from cowdemo.runs import RunStore


def cowdemo(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cowdemo.cli", *args, "--db", db],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)


def details(per_image: list[tuple[int, int, int]], ap50: float) -> dict:
    return {"result": {
        "per_image": [{"image_id": i + 1, "tp": [[0, 0, 0.9]] * tp, "fp": list(range(fp)),
                       "fn": list(range(fn)), "ignored": []}
                      for i, (tp, fp, fn) in enumerate(per_image)],
        "per_class_ap": {"cow": {"AP": ap50 / 2, "AP50": ap50, "num_gt": 3}},
    }}  # fmt: skip


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'runs.sqlite'}"


def test_worse_second_run_exits_1_naming_metric_and_delta(db):
    store = RunStore(db)
    store.record("evaluation", "cows-v2", {"AP50": 0.80, "AP": 0.50}, dataset="cows",
                 created_at=1.0)
    store.record("evaluation", "cows-v2", {"AP50": 0.70, "AP": 0.49}, dataset="cows",
                 created_at=2.0)
    run = cowdemo("check", "--dataset", "cows", "--model", "cows-v2", "--current", "latest",
                  "--tolerance", "0.01", "--metric", "AP50", db=db)
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stdout.startswith("REGRESSION cows-v2 on cows: AP50 0.7000 (run 2) vs 0.8000")
    assert "delta -0.1000, tolerance 0.0100" in run.stdout
    # the AP drop (0.01) is within tolerance
    ok = cowdemo("check", "--dataset", "cows", "--model", "cows-v2", "--current", "latest",
                 "--metric", "AP", "--tolerance", "0.02", db=db)
    assert ok.returncode == 0 and ok.stdout.startswith("OK ")


def test_better_second_run_exits_0(db):
    store = RunStore(db)
    store.record("evaluation", "m", {"AP50": 0.60}, dataset="cows", created_at=1.0)
    store.record("evaluation", "m", {"AP50": 0.65}, dataset="cows", created_at=2.0)
    run = cowdemo("check", "--dataset", "cows", "--model", "m", "--current", "latest", db=db)
    assert run.returncode == 0, run.stderr
    assert "delta +0.0500" in run.stdout


def test_baselines_best_latest_and_run_id(db):
    store = RunStore(db)
    ids = [store.record("evaluation", "m", {"AP50": v}, dataset="d", created_at=t)
           for t, v in enumerate([0.5, 0.9, 0.7, 0.68])]
    current = store.get(ids[-1])
    assert check(store, current, "best").baseline.id == ids[1]
    assert check(store, current, "latest").baseline.id == ids[2]
    assert not check(store, current, "latest", tolerance=0.05).regressed
    assert check(store, current, str(ids[0])).delta == pytest.approx(0.18)
    assert check(store, store.get(ids[0]), "best").baseline is None, "first run: nothing before"
    with pytest.raises(CowdemoError, match="no metric 'mota'"):
        check(store, current, metric="mota")
    with pytest.raises(CowdemoError, match="best, latest or a run id"):
        check(store, current, "median")
    assert [(r.id, round(d, 2)) for r, d in flag_drops(store.list(), "AP50", 0.1)] == [
        (ids[2], 0.2), (ids[3], 0.22)]


def test_lower_is_better_metrics(db):
    store = RunStore(db)
    store.record("tracking", "m", {"num_switches": 3}, dataset="v", created_at=1.0)
    worse = store.record("tracking", "m", {"num_switches": 5}, dataset="v", created_at=2.0)
    assert check(store, store.get(worse), "best", "num_switches", 1).regressed


def test_diff_lists_metric_class_and_image_changes(db):
    store = RunStore(db)
    a = store.record("evaluation", "coco", {"AP50": 0.2}, dataset="d",
                     details=details([(1, 1, 0), (0, 0, 2)], 0.2))
    b = store.record("evaluation", "tuned", {"AP50": 0.7}, dataset="d",
                     details=details([(1, 1, 0), (2, 0, 0)], 0.7))
    diff = diff_runs(store, a, b)
    assert diff["metrics"]["AP50"]["delta"] == pytest.approx(0.5)
    assert diff["classes"]["cow"]["delta"] == pytest.approx(0.5)
    assert diff["images_changed"] == [{"image_id": 2, "a": {"tp": 0, "fp": 0, "fn": 2},
                                       "b": {"tp": 2, "fp": 0, "fn": 0}}]
    run = cowdemo("runs", "diff", str(a), str(b), db=db)
    assert run.returncode == 0
    assert "AP50" in run.stdout and "(+0.5000)" in run.stdout and "image 2" in run.stdout


def test_runs_list_show_export(db, tmp_path):
    store = RunStore(db)
    store.record("evaluation", "m", {"AP50": 0.5}, dataset="d")
    store.record("tracking", "m", {"mota": 0.9}, dataset="v")
    listing = cowdemo("runs", "list", "--kind", "evaluation", db=db)
    assert listing.returncode == 0 and listing.stdout.splitlines()[1].split()[-1] == "0.5000"
    assert len(listing.stdout.splitlines()) == 2
    shown = cowdemo("runs", "show", "2", db=db)
    assert '"kind": "tracking"' in shown.stdout
    out = tmp_path / "runs.csv"
    assert cowdemo("runs", "export", "--out", str(out), db=db).returncode == 0
    rows = out.read_text().splitlines()
    assert rows[0].endswith("AP50,mota") and len(rows) == 3
    missing = cowdemo("runs", "show", "99", db=db)
    assert missing.returncode == 2 and "no run 99" in missing.stderr
