"""Paired bootstrap of B - A: excludes zero for a clearly better model, holds zero for equal
ones, reproduces with its seed, and its all-images point equals the COCO engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import shared_path

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.compare import Comparison, compare_models
from cowdemo.evaluation.detection import evaluate_coco


def synthetic(n_images: int = 40, seed: int = 0) -> dict:
    """A COCO dict of n_images 640x480 images with 1-3 cows (and a dog now and then)."""
    rng = np.random.default_rng(seed)
    anns = []
    for image_id in range(1, n_images + 1):
        for _ in range(int(rng.integers(1, 4))):
            w, h = rng.uniform(40, 200, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat = 2 if rng.random() < 0.15 else 1
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": 640, "height": 480}
                       for i in range(1, n_images + 1)],
            "categories": [{"id": 1, "name": "cow"}, {"id": 2, "name": "dog"}],
            "annotations": anns}


def detector(gt: dict, *, find: float, jitter: float, false_per_image: float, seed: int) -> list:
    """Results of a made-up model: finds a box with probability ``find``, shifted by up to
    ``jitter`` of its size, plus some false boxes; scores favour the real finds."""
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        if rng.random() < find:
            x, y, w, h = a["bbox"]
            dx, dy = rng.uniform(-jitter, jitter, 2) * (w, h)
            out.append({"image_id": a["image_id"], "category_id": a["category_id"],
                        "bbox": [x + dx, y + dy, w, h], "score": float(rng.uniform(0.5, 1))})
    for im in gt["images"]:
        for _ in range(int(rng.poisson(false_per_image))):
            out.append({"image_id": im["id"], "category_id": 1, "score": float(rng.uniform(0, .8)),
                        "bbox": [*rng.uniform(0, 400, 2), *rng.uniform(20, 100, 2)]})
    return out


@pytest.fixture(scope="module")
def data():
    gt = synthetic()
    weak = detector(gt, find=0.5, jitter=0.3, false_per_image=1.5, seed=1)
    strong = detector(gt, find=0.95, jitter=0.03, false_per_image=0.2, seed=2)
    weak_again = detector(gt, find=0.5, jitter=0.3, false_per_image=1.5, seed=3)
    return gt, weak, strong, weak_again


def test_clearly_better_model_excludes_zero(data):
    gt, weak, strong, _ = data
    c = compare_models(gt, weak, strong, names=("weak", "strong"), n_boot=300, seed=0)
    for metric in ("AP", "AP50", "AP75", "AR100", "AP50/cow"):
        m = c.metrics[metric]
        assert m.verdict == "better" and m.low > 0 and m.excludes_zero, metric
        assert m.low <= m.difference <= m.high
    backwards = compare_models(gt, strong, weak, n_boot=300, seed=0).metrics["AP50"]
    assert backwards.verdict == "worse" and backwards.high < 0
    sentence = c.metrics["AP50"].sentence("weak", "strong")
    assert sentence.startswith("strong's AP50 is ")
    assert " higher than weak's, 95% interval " in sentence
    assert sentence.endswith(": better")


def test_equal_models_hold_zero(data):
    gt, weak, _, weak_again = data
    same = compare_models(gt, weak, weak, n_boot=200, seed=0)
    assert all(m.low == m.high == 0 and m.verdict == "too few images to tell"
               for m in same.metrics.values())
    twins = compare_models(gt, weak, weak_again, n_boot=300, seed=0)
    for metric in ("AP", "AP50", "AR100"):
        m = twins.metrics[metric]
        assert m.low < 0 < m.high and m.verdict == "too few images to tell", metric
        assert m.sentence().endswith("too few images to tell")


def test_same_seed_same_intervals(data):
    gt, weak, strong, _ = data
    first = compare_models(gt, weak, strong, n_boot=100, seed=7).to_dict()
    assert compare_models(gt, weak, strong, n_boot=100, seed=7).to_dict() == first
    other = compare_models(gt, weak, strong, n_boot=100, seed=8).to_dict()
    assert other["metrics"]["AP50"]["low"] != first["metrics"]["AP50"]["low"]
    assert Comparison.from_dict(json.loads(json.dumps(first))).to_dict() == first


def test_point_values_equal_the_engine(data):
    gt, weak, strong, _ = data
    c = compare_models(gt, weak, strong, n_boot=1, seed=0)
    for model, results in (("a", weak), ("b", strong)):
        r = evaluate_coco(gt, results)
        for stat in ("AP", "AP50", "AP75", "AR100"):
            assert getattr(c.metrics[stat], model) == pytest.approx(r.stats[stat], abs=1e-12)
        assert getattr(c.metrics["AP50/cow"], model) == pytest.approx(
            r.per_class_ap["cow"]["AP50"], abs=1e-12)


def test_point_values_equal_the_engine_on_the_coco_reference():
    folder = shared_path("reference/coco-map/val2014-100")
    gt = json.loads((folder / "instances_val2014_100.json").read_text())
    res = json.loads((folder / "fakebbox100_results.json").read_text())
    c = compare_models(gt, res, res[::2], n_boot=2, seed=0)
    r = evaluate_coco(gt, res)
    for stat in ("AP", "AP50", "AP75", "AR100"):
        assert c.metrics[stat].a == pytest.approx(r.stats[stat], abs=1e-12)
    undefined = [k for k, v in r.per_class_ap.items() if v["num_gt"] == 0]
    assert undefined and all(c.metrics[f"AP50/{k}"].verdict == "n/a" for k in undefined)
    assert "n/a" in c.metrics[f"AP50/{undefined[0]}"].sentence()


def test_bad_settings_are_clear_errors(data):
    gt, weak, strong, _ = data
    with pytest.raises(CowdemoError, match="n_boot"):
        compare_models(gt, weak, strong, n_boot=0)
