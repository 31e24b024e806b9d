"""TIDE error types and calibration: equal to hotcoco 1.3 on the shared COCO reference and on
perturbed copies of it, and a built case where each error type appears exactly as constructed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import shared_path

from cowdemo.evaluation.analysis import (
    ERROR_TYPES,
    Calibration,
    TideErrors,
    calibration,
    results_from_predictions,
    tide_errors,
)
from cowdemo.evaluation.detection import evaluate_coco

REFERENCE = "reference/coco-map/val2014-100"


@pytest.fixture(scope="module")
def reference():
    folder = shared_path(REFERENCE)
    gt = json.loads((folder / "instances_val2014_100.json").read_text())
    res = json.loads((folder / "fakebbox100_results.json").read_text())
    return gt, res


def hotcoco_eval(tmp_path, gt: dict, res: list):
    hotcoco = pytest.importorskip("hotcoco")
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(res))
    coco = hotcoco.COCO(str(gt_path))
    evaluator = hotcoco.COCOeval(coco, coco.load_res(str(res_path)), "bbox")
    evaluator.evaluate()
    return evaluator


def assert_same_tide(ours: TideErrors, theirs: dict):
    assert ours.counts == theirs["counts"]
    assert set(ours.delta_ap) == set(theirs["delta_ap"])
    for key, value in theirs["delta_ap"].items():
        assert ours.delta_ap[key] == pytest.approx(value, abs=1e-12), key
    assert ours.ap_base == pytest.approx(theirs["ap_base"], abs=1e-12)


def perturbed(gt: dict, res: list, seed: int) -> list:
    """Shifted boxes (Loc), swapped classes (Cls), near-copies (Dupe), far boxes (Bkg / Both),
    scores rounded so ties happen."""
    rng = np.random.default_rng(seed)
    cats = [c["id"] for c in gt["categories"]]
    out = []
    for r in res:
        x, y, w, h = r["bbox"]
        u = rng.random()
        if u < 0.2:
            x += w * rng.uniform(0.3, 0.9)
        elif u < 0.3:
            r = dict(r, category_id=int(rng.choice(cats)))
        elif u < 0.4:
            out.append(dict(r, bbox=[x + 1, y + 1, w, h], score=round(float(rng.random()), 2)))
        elif u < 0.5:
            x += rng.uniform(-3, 3) * w
            y += rng.uniform(-3, 3) * h
        out.append(dict(r, bbox=[x, y, w, h], score=round(float(rng.random()), 2)))
    return out


def test_tide_equals_hotcoco_on_the_reference(reference, tmp_path):
    gt, res = reference
    theirs = hotcoco_eval(tmp_path, gt, res).tide_errors(pos_thr=0.5, bg_thr=0.1)
    ours = tide_errors(gt, res)
    assert_same_tide(ours, theirs)
    # every counted error is placed on its image, and the result survives JSON
    placed = {t: sum(len(e[t]) for e in ours.per_image.values()) for t in ERROR_TYPES}
    assert placed == ours.counts
    again = TideErrors.from_dict(json.loads(json.dumps(ours.to_dict())))
    assert again.counts == ours.counts and again.per_image == ours.per_image


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tide_equals_hotcoco_on_perturbed_results(reference, tmp_path, seed):
    gt, res = reference
    res = perturbed(gt, res, seed)
    ours = tide_errors(gt, res, result=evaluate_coco(gt, res))
    assert_same_tide(ours, hotcoco_eval(tmp_path, gt, res).tide_errors(0.5, 0.1))
    assert min(ours.counts.values()) > 0  # every type occurs


def built_case(extra: list | None = None) -> tuple[dict, list]:
    """Five images, one box each (cows on 1, 2, 5; dogs on 3, 4), one error of each kind."""
    boxes = {1: ([0, 0, 100, 100], 1), 2: ([0, 0, 100, 100], 1), 3: ([0, 0, 100, 100], 2),
             4: ([0, 0, 100, 100], 2), 5: ([0, 0, 50, 50], 1)}  # fmt: skip
    gt = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 400, "height": 400}
                   for i in boxes],
        "categories": [{"id": 1, "name": "cow"}, {"id": 2, "name": "dog"}],
        "annotations": [{"id": i, "image_id": i, "bbox": b, "area": b[2] * b[3],
                         "category_id": c, "iscrowd": 0} for i, (b, c) in boxes.items()],
    }  # fmt: skip

    def cow(image_id, box, score):
        return {"image_id": image_id, "category_id": 1, "bbox": box, "score": score}

    res = [
        cow(1, [0, 0, 100, 100], 0.9),    # true positive
        cow(1, [2, 2, 100, 100], 0.8),    # Dupe: the same cow again
        cow(2, [50, 0, 100, 100], 0.7),   # Loc: IoU 1/3 with its cow
        cow(3, [0, 0, 100, 100], 0.6),    # Cls: a "cow" exactly on the dog
        cow(4, [60, 0, 100, 100], 0.5),   # Both: IoU 0.25 with the dog; the dog is a Miss
        cow(5, [200, 200, 50, 50], 0.4),  # Bkg: nothing there; the cow of image 5 is a Miss
    ]
    return gt, res + (extra or [])


def test_each_error_type_exactly_as_built(tmp_path):
    gt, res = built_case()
    ours = tide_errors(gt, res)
    assert ours.counts == {"Cls": 1, "Loc": 1, "Both": 1, "Dupe": 1, "Bkg": 1, "Miss": 2}
    where = {(image_id, t): boxes for image_id, e in ours.per_image.items()
             for t, boxes in e.items() if boxes}  # fmt: skip
    # detection indices are per image in results order; Miss indexes the image's boxes
    assert where == {(1, "Dupe"): [1], (2, "Loc"): [0], (3, "Cls"): [0], (4, "Both"): [0],
                     (5, "Bkg"): [0], (4, "Miss"): [0], (5, "Miss"): [0]}  # fmt: skip
    # fixing what costs nothing gains nothing: only 1 of 3 cows is found, above every FP, so
    # removing false positives changes no cow precision
    assert ours.delta_ap["Dupe"] == ours.delta_ap["Bkg"] == ours.delta_ap["Both"] == 0.0
    assert ours.delta_ap["Loc"] > 0 and ours.delta_ap["Miss"] > 0
    assert_same_tide(ours, hotcoco_eval(tmp_path, gt, res).tide_errors(0.5, 0.1))


@pytest.mark.parametrize(
    "extra",
    [
        # a Loc error on a cow that is already found: removed, not a second true positive
        [{"image_id": 1, "category_id": 1, "bbox": [60, 0, 100, 100], "score": 0.95}],
        # two Loc errors on one free cow: only the higher score becomes a true positive
        [{"image_id": 2, "category_id": 1, "bbox": [40, 0, 100, 100], "score": 0.75}],
        # a Cls error on a dog that a real dog detection finds
        [{"image_id": 3, "category_id": 2, "bbox": [0, 0, 100, 100], "score": 0.2}],
        # a Cls dog on a cow that a true positive already has
        [{"image_id": 1, "category_id": 2, "bbox": [0, 0, 100, 100], "score": 0.3}],
    ],
)
def test_competing_fixes_equal_hotcoco(tmp_path, extra):
    gt, res = built_case(extra)
    assert_same_tide(tide_errors(gt, res), hotcoco_eval(tmp_path, gt, res).tide_errors(0.5, 0.1))


def test_calibration_equals_hotcoco(reference, tmp_path):
    gt, res = reference
    for results in (res, perturbed(gt, res, 3)):
        theirs = hotcoco_eval(tmp_path, gt, results).calibration(n_bins=10, iou_threshold=0.5)
        ours = calibration(gt, results)
        assert ours.num_detections == theirs["num_detections"]
        assert ours.ece == pytest.approx(theirs["ece"], abs=1e-12)
        assert ours.mce == pytest.approx(theirs["mce"], abs=1e-12)
        for mine, other in zip(ours.bins, theirs["bins"], strict=True):
            assert mine["count"] == other["count"]
            assert mine["avg_confidence"] == pytest.approx(other["avg_confidence"], abs=1e-12)
            assert mine["avg_accuracy"] == pytest.approx(other["avg_accuracy"], abs=1e-12)
        assert ours.per_category == pytest.approx(theirs["per_category"], abs=1e-12)
    again = Calibration.from_dict(json.loads(json.dumps(ours.to_dict())))
    assert again == ours


def test_calibration_of_a_built_case():
    """Ten detections at 0.85: 8 right -> bin 0.8-0.9 has accuracy 0.8, ECE 0.05."""
    gt = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(10)],
          "categories": [{"id": 1, "name": "cow"}],
          "annotations": [{"id": i, "image_id": i, "bbox": [0, 0, 10, 10], "area": 100,
                           "category_id": 1, "iscrowd": 0} for i in range(10)]}  # fmt: skip
    res = [{"image_id": i, "category_id": 1, "score": 0.85,
            "bbox": [0, 0, 10, 10] if i < 8 else [50, 50, 10, 10]} for i in range(10)]  # fmt: skip
    cal = calibration(gt, res)
    b = cal.bins[8]
    assert (b["count"], b["avg_accuracy"]) == (10, pytest.approx(0.8))
    assert cal.ece == pytest.approx(0.05) and cal.mce == pytest.approx(0.05)
    assert sum(x["count"] for x in cal.bins) == 10


def test_results_from_predictions_keeps_indices():
    from cowdemo.detections import Detections

    dets = Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 30]], float), [0.9, 0.4], [19, 16],
                      ["cow", "dog"])
    rows = results_from_predictions({3: dets}, {"cow": 1})
    assert [r["category_id"] for r in rows] == [1, -1]
    assert rows[1]["bbox"] == [5.0, 5.0, 15.0, 25.0] and rows[0]["image_id"] == 3
