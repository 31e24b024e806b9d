"""The run store on real SQLite files, with real parallel processes."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from cowdemo.errors import CowdemoError
from cowdemo.runs import RunStore, file_sha256


def test_record_list_get_details_find(tmp_path):
    store = RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    first = store.record("evaluation", "m1", {"AP": 0.5, "AP50": 0.7}, dataset="cows",
                         dataset_hash="h1", settings={"score": 0.05}, details={"1": [1, 2]},
                         device="cpu", duration_s=1.5, created_at=100.0)
    second = store.record("evaluation", "m2", {"AP": 0.6}, dataset="cows", dataset_hash="h1",
                          settings={"score": 0.05}, created_at=200.0)
    store.record("tracking", "m1", {"mota": 0.9}, dataset="video", created_at=150.0)
    assert [r.id for r in store.list(kind="evaluation")] == [first, second]
    assert [r.model for r in store.list(dataset="cows", model="m2")] == ["m2"]
    run = store.get(first)
    assert run.metrics == {"AP": 0.5, "AP50": 0.7} and run.settings == {"score": 0.05}
    assert run.duration_s == 1.5 and run.device == "cpu"
    assert store.details(first) == {"1": [1, 2]} and store.details(second) is None
    assert store.find("evaluation", "m1", "", "h1", {"score": 0.05}).id == first
    assert store.find("evaluation", "m1", "", "h1", {"score": 0.5}) is None
    with pytest.raises(CowdemoError, match="no run 999"):
        store.get(999)
    # the file is a plain SQLite database in WAL mode
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_survives_reopen_and_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path))
    RunStore().record("training", "ft", {"AP50": 0.8})
    assert RunStore().list()[0].model == "ft"
    assert (tmp_path / "runs.sqlite").is_file()


def _writer(url: str, worker: int, count: int) -> None:
    store = RunStore(url)
    for i in range(count):
        store.record("evaluation", f"model-{worker}", {"AP": i / count, "worker": worker},
                     dataset="d", settings={"i": i}, details={"image": i})


def test_four_processes_writing_200_runs_each_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    RunStore(url)  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    store = RunStore(url)
    runs = store.list()
    assert len(runs) == 800 and store.count() == 800
    for w in range(4):
        mine = [r for r in runs if r.model == f"model-{w}"]
        assert sorted(r.settings["i"] for r in mine) == list(range(200))
    assert store.details(runs[-1].id)["image"] in range(200)
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_unopenable_database_is_a_clear_error(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(CowdemoError, match="cannot be opened"):
        RunStore(f"sqlite:///{tmp_path / 'dir.sqlite'}")


def test_file_sha256(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(None) == "" and file_sha256(tmp_path / "missing") == ""
