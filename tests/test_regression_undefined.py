"""COCO's -1 (nothing to score) is "n/a": never in a delta, a baseline or a regression."""

from __future__ import annotations

import pytest

from cowdemo.cli import main
from cowdemo.regression import check, diff_runs, flag_drops
from cowdemo.runs import RunStore


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")


def test_minus_one_never_enters_a_delta_or_a_check(store, capsys):
    a = store.record("evaluation", "m", {"AP50": 0.6, "APl": 0.5856}, dataset="d",
                     created_at=1.0)
    b = store.record("evaluation", "m", {"AP50": 0.61, "APl": -1.0}, dataset="d",
                     created_at=2.0)
    diff = diff_runs(store, a, b)
    assert diff["metrics"]["APl"] == {"a": 0.5856, "b": -1.0, "delta": None}
    assert diff["metrics"]["AP50"]["delta"] == pytest.approx(0.01)
    verdict = check(store, store.get(b), "best", "APl")
    assert verdict.delta is None and not verdict.regressed and "n/a" in verdict.report()
    assert flag_drops([store.get(a), store.get(b)], "APl", 0.01) == []
    # -1 is never picked as the baseline either
    c = store.record("evaluation", "m", {"AP50": 0.5, "APl": 0.4}, dataset="d", created_at=3.0)
    assert check(store, store.get(c), "best", "APl").baseline.id == a
    assert main(["runs", "diff", str(a), str(b), "--db", store.url]) == 0
    out = capsys.readouterr().out
    assert "APl" not in out and "AP50" in out
    assert main(["runs", "list", "--metric", "APl", "--db", store.url]) == 0
    assert "n/a" in capsys.readouterr().out


def test_negative_tracking_scores_are_real_values(store):
    a = store.record("tracking", "t", {"MOTA": -0.2}, dataset="v", created_at=1.0)
    b = store.record("tracking", "t", {"MOTA": -0.5}, dataset="v", created_at=2.0)
    assert diff_runs(store, a, b)["metrics"]["MOTA"]["delta"] == pytest.approx(-0.3)
    assert check(store, store.get(b), "best", "MOTA", 0.01).regressed


def test_runs_page_diff_shows_na_not_minus_one(tmp_path, monkeypatch):
    from helpers import open_page

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    monkeypatch.setenv("COWDEMO_RUNS_DB", url)
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    store = RunStore(url)
    store.record("evaluation", "m", {"AP50": 0.6, "APl": 0.5856}, dataset="d", created_at=1.0)
    store.record("evaluation", "m", {"AP50": 0.61, "APl": -1.0}, dataset="d", created_at=2.0)
    at = open_page("views/runs.py")
    diff = next(t.value for t in at.dataframe if "metric" in t.value.columns)
    apl = diff[diff["metric"] == "APl"].iloc[0]
    assert (apl["A"], apl["B"], apl["delta"]) == ("0.5856", "n/a", "n/a")
    assert diff[diff["metric"] == "AP50"].iloc[0]["delta"] == "+0.0100"
    assert not any("-1" in str(v) for t in at.dataframe for v in t.value.to_numpy().ravel())
