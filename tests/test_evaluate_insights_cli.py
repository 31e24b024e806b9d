"""`cowdemo evaluate` prints error types, calibration and the A-vs-B bootstrap (stored with the
run, same seed same lines); `cowdemo check --significant` fails only on a drop whose interval
excludes zero. Real dataset files, real SQLite, results files instead of models (fast)."""

from __future__ import annotations

import json

import pytest

from cowdemo.cli import main
from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.synthetic import make_dataset
from cowdemo.runs import RunStore


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> CocoDataset:
    root = tmp_path_factory.mktemp("insights") / "cows"
    make_dataset(root, n_images=12, width=160, height=120, seed=2, n_animals=(2, 3))
    return CocoDataset.load(root)


def write_results(path, dataset: CocoDataset, spoiled: set[int]) -> str:
    """Every box found exactly (score 0.9), except on ``spoiled`` images: boxes moved away."""
    rows = []
    for a in dataset.coco["annotations"]:
        x, y, w, h = a["bbox"]
        if a["image_id"] in spoiled:
            x, y = x + w, y + h
        rows.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "bbox": [x, y, w, h], "score": 0.9})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return str(path)


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def test_evaluate_prints_error_types_calibration_and_a_reproducible_comparison(
    dataset, tmp_path, capsys
):
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    good = write_results(tmp_path / "good.json", dataset, set())
    bad = write_results(tmp_path / "bad.json", dataset, set(dataset.image_ids[:9]))
    argv = ["evaluate", "--results", good, "--results", bad, "--dataset", str(dataset.root),
            "--db", db, "--bootstrap", "200", "--seed", "5"]
    code, lines = run_cli(capsys, *argv)
    assert code == 0
    missed = next(line for line in lines if line.strip().startswith("missed"))
    assert "0.0000 (0)" in missed  # good misses nothing; bad misses the 9 spoiled images' cows
    assert any(line.strip().startswith("calibration error (ECE)") for line in lines)
    head = lines.index(next(line for line in lines if line.startswith("bad vs good (12 images")))
    ap50 = next(line for line in lines[head:] if line.strip().startswith("bad's AP50 is "))
    assert " lower than good's, 95% interval " in ap50 and ap50.endswith(": worse")
    # stored with run B, and the same seed gives the same sentences
    store = RunStore(db)
    run_b = store.list(model="bad")[-1]
    stored = store.details(run_b.id)["comparisons"]
    assert [k.split("|")[1:] for k in stored] == [["200", "5", "0.95"]]
    _, again = run_cli(capsys, *argv)
    assert [ln for ln in again if "interval" in ln] == [ln for ln in lines if "interval" in ln]


def test_check_significant_fails_only_when_the_interval_excludes_zero(dataset, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    common = ["--dataset", str(dataset.root), "--db", db]
    for folder, spoiled in (("v1", set()), ("v2", {dataset.image_ids[0]})):
        path = write_results(tmp_path / folder / "model.json", dataset, spoiled)
        assert run_cli(capsys, "evaluate", "--results", path, "--bootstrap", "0", *common)[0] == 0
    gate = ["check", "--model", "model", "--current", "latest", "--baseline", "best", *common]
    code, lines = run_cli(capsys, *gate)
    assert code == 1 and lines[0].startswith("REGRESSION")  # one image worse: over 0.01
    code, lines = run_cli(capsys, *gate, "--significant", "--bootstrap", "300")
    assert code == 0 and lines[0].startswith("OK") and "(holds zero)" in lines[0]
    path = write_results(tmp_path / "v3" / "model.json", dataset, set(dataset.image_ids[:8]))
    run_cli(capsys, "evaluate", "--results", path, "--bootstrap", "0", *common)
    code, lines = run_cli(capsys, *gate, "--significant", "--bootstrap", "300")
    assert code == 1 and lines[0].startswith("REGRESSION") and "(excludes zero)" in lines[0]
    code = main([*gate, "--significant", "--metric", "APs"])
    assert code == 2 and "bootstrap covers" in capsys.readouterr().err
