"""Models scored on datasets end to end: real models, real images, real SQLite run history,
and the numbers checked against pycocotools on the same predictions."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cowdemo.box import DetectorBox
from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.synthetic import make_dataset
from cowdemo.detections import Detections
from cowdemo.evaluation.detection import STAT_NAMES
from cowdemo.evaluation.runner import evaluate_model, evaluate_results_file, load_evaluation
from cowdemo.models.base import Detector
from cowdemo.runs import RunStore

pytestmark = pytest.mark.slow


@pytest.fixture
def dataset(tmp_path) -> CocoDataset:
    make_dataset(tmp_path / "cows", n_images=3, width=320, height=240, seed=1)
    return CocoDataset.load(tmp_path / "cows")


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(f"sqlite:///{tmp_path / 'runs.sqlite'}")


def pycocotools_stats(gt: dict, results: list) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        dt = coco.loadRes(results)
        ev = COCOeval(coco, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_fine_tuned_model_scored_like_pycocotools_and_cached(demo_env, dataset, store):
    first = evaluate_model("cows-finetuned", dataset, device="cpu", store=store)
    assert not first.cached and first.run_id == 1
    results = [
        row
        for image_id, dets in first.predictions.items()
        for row in dets.to_coco_results(image_id, dataset.category_ids)
    ]
    assert len(results) > 0
    expected = pycocotools_stats(dataset.coco, results)
    ours = first.result.stats_array
    np.testing.assert_allclose(ours, expected, atol=1e-6)  # results rounded to 1e-4 px
    # unchanged inputs: the stored result comes back at once, nothing re-run
    again = evaluate_model("cows-finetuned", dataset, device="cpu", store=store)
    assert again.cached and again.run_id == first.run_id
    assert again.result.stats == first.result.stats
    assert set(again.predictions) == set(first.predictions)
    run = store.get(first.run_id)
    assert run.dataset == "cows" and run.dataset_hash == dataset.content_hash()
    assert len(run.weights_sha256) == 64 and run.metrics["AP"] == first.result.stats["AP"]
    # a changed dataset is a new evaluation
    dataset.coco["annotations"].pop()
    changed = CocoDataset(dataset.root, dataset.coco, "cows")
    assert not evaluate_model("cows-finetuned", changed, device="cpu", store=store).cached


def test_coco_model_calling_cows_dogs_is_scored_on_cow_only(demo_env, dataset, store):
    evaluation = evaluate_model("frcnn-mobilenet-v3-coco", dataset, device="cpu", store=store)
    assert evaluation.result.stats["AP"] == 0.0, "no cow boxes at all"
    n = sum(len(d) for d in evaluation.predictions.values())
    assert evaluation.result.unscored == {"dog": n}, "other classes are counted, not dropped"
    loaded = load_evaluation(store, evaluation.run_id)
    assert loaded.result.unscored == evaluation.result.unscored


class GroundTruthAsDetector(Detector):
    """Returns each image's true boxes under another class name, shifted by ``shift`` px: the
    detections of a model that finds every cow but calls it ``name`` (the notebook's "dog")."""

    def __init__(self, dataset: CocoDataset, name: str, shift: float = 0.0):
        self.dataset, self.label, self.shift, self.name = dataset, name, shift, f"gt-as-{name}"
        self._sizes = {}

    def predict_batch(self, images):
        out = []
        for image in images:
            image_id = next(i for i in self.dataset.image_ids
                            if self.dataset.read_image(i).tobytes() == image.tobytes())
            gt = self.dataset.ground_truth(image_id)
            n = len(gt)
            out.append(Detections(gt.xyxy + self.shift, np.full(n, 0.9), [0] * n,
                                  [self.label] * n))
        return out


def test_every_cow_called_a_dog_is_a_confusion(dataset, store):
    dogs = GroundTruthAsDetector(dataset, "dog", shift=2.0)
    evaluation = evaluate_model(dogs, dataset, store=store)
    n = dataset.num_boxes("cow")
    assert evaluation.result.confusions == {"dog on cow": n}
    assert evaluation.result.stats["AP"] == 0.0 and evaluation.result.unscored == {"dog": n}
    cows = evaluate_model(GroundTruthAsDetector(dataset, "cow"), dataset, store=store)
    assert cows.result.stats["AP"] == pytest.approx(1.0) and cows.result.confusions == {}
    assert all(not entry["fp"] and not entry["fn"] for entry in cows.result.per_image.values())


def test_detector_box_evaluate_as_in_the_notebook(demo_env, dataset, store):
    box = DetectorBox("cows-finetuned", device="cpu")
    result = box.evaluate(dataset, store=store)
    assert set(result.stats) == set(STAT_NAMES)
    assert store.count() == 1


def test_results_file_of_an_external_model(dataset, store, tmp_path):
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
         "score": 0.9}
        for a in dataset.coco["annotations"]
    ]
    path = tmp_path / "external.json"
    path.write_text(json.dumps(perfect))
    evaluation = evaluate_results_file(path, dataset, store=store)
    assert evaluation.result.stats["AP"] == pytest.approx(1.0)
    assert evaluation.model == "external" and store.get(evaluation.run_id).weights_sha256


def test_cli_evaluate_two_models_side_by_side(demo_env, dataset, tmp_path):
    env = {**os.environ, "COWDEMO_DATA": str(tmp_path / "data")}
    command = [sys.executable, "-m", "cowdemo.cli", "evaluate", "--model",
               "frcnn-mobilenet-v3-coco", "--model", "cows-finetuned", "--dataset",
               str(dataset.root), "--device", "cpu"]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "dataset cows: 3 images, " + f"{dataset.num_boxes()} boxes"
    header = lines[1].split()
    assert header == ["frcnn-mobilenet-v3-coco", "cows-finetuned"]
    assert lines[2].split()[0] == "AP" and float(lines[2].split()[1]) == 0.0
    assert "frcnn-mobilenet-v3-coco boxes of classes the dataset lacks: dog 300" in lines
    assert (tmp_path / "data" / "runs.sqlite").is_file()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert "stored result (unchanged inputs)" in again.stdout
    bad = subprocess.run([*command[:4], "--model", "cows-finetuned", "--dataset",
                          str(tmp_path / "nowhere")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
