"""COCO box mAP engine: exact against the val2014-100 reference and pycocotools, and by hand."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from fractions import Fraction

import numpy as np
import pytest
from helpers import shared_path

from cowdemo.coco import NAME_BY_CATEGORY_ID
from cowdemo.detections import Detections
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import (
    STAT_NAMES,
    DetectionEvaluator,
    EvalResult,
    evaluate_coco,
)

REFERENCE = "reference/coco-map/val2014-100"


def pycocotools_eval(gt: dict, results: list):
    """pycocotools' COCOeval (bbox) on copies of the inputs, stdout silenced."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def ann(ann_id, image_id, xywh, category_id=1, iscrowd=0, area=None):
    x, y, w, h = xywh
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [x, y, w, h],
        "area": float(w * h) if area is None else area,
        "iscrowd": iscrowd,
    }


def det(image_id, xywh, score, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": list(xywh), "score": score}


# --- the hand-built case ------------------------------------------------------------------------
# Two images, one class (cow), three ground-truth boxes, four detections; all boxes are "small"
# (area <= 32²), so APs = AP and APm = APl = -1.
#   image 1: gt A (0, 0, 10, 10), gt B (20, 0, 10, 10);  image 2: gt C (0, 0, 10, 10)
#   d1 image 1 (0, 0, 10, 10)  score .9  IoU with A = 1                      -> TP at every IoU
#   d2 image 1 (50, 50, 10, 10) score .8 no overlap                          -> FP
#   d3 image 2 (0, 0, 10, 5)   score .7  IoU with C = 50 / 100 = 0.5         -> TP at IoU .50 only
#   d4 image 1 (22, 0, 10, 10) score .6  IoU with B = 80 / 120 = 2/3         -> TP at IoU .50-.65
# IoU .50: TP, FP, TP, TP -> recall 1/3, 1/3, 2/3, 1; precision 1, 1/2, 2/3, 3/4, made monotone
#   1, 3/4, 3/4, 3/4. Recall points .00-.33 (34 of 101) read precision 1, the other 67 read 3/4:
#   AP50 = (34 + 67 * 3/4) / 101 = 337/404.
# IoU .55-.65 (d3 drops out): TP, FP, FP, TP -> recall 1/3, 1/3, 1/3, 2/3; precision 1, 1/2, 1/3,
#   1/2, monotone 1, 1/2, 1/2, 1/2: 34 points at 1, .34-.66 (33) at 1/2, the last 34 at 0: AP 1/2.
# IoU .70-.95: TP, FP, FP, FP -> recall stays 1/3: 34 points at precision 1, AP = 34/101.
# AP = (337/404 + 3 * 1/2 + 6 * 34/101) / 10 = 1759/4040.
# AR100 = (1 + 3 * 2/3 + 6 * 1/3) / 10 = 1/2. AR1 keeps the best detection per image: d1 and d3,
#   so recall 2/3 at IoU .5, 1/3 above: AR1 = (2/3 + 9 * 1/3) / 10 = 11/30. AR10 = AR100.
HAND_STATS = {
    "AP": Fraction(1759, 4040),
    "AP50": Fraction(337, 404),
    "AP75": Fraction(34, 101),
    "APs": Fraction(1759, 4040),
    "APm": -1,
    "APl": -1,
    "AR1": Fraction(11, 30),
    "AR10": Fraction(1, 2),
    "AR100": Fraction(1, 2),
    "ARs": Fraction(1, 2),
    "ARm": -1,
    "ARl": -1,
}


@pytest.fixture
def hand_gt() -> dict:
    return {
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            ann(1, 1, (0, 0, 10, 10)),
            ann(2, 1, (20, 0, 10, 10)),
            ann(3, 2, (0, 0, 10, 10)),
        ],
        "categories": [{"id": 1, "name": "cow"}],
    }


@pytest.fixture
def hand_results() -> list:
    return [
        det(1, (0, 0, 10, 10), 0.9),
        det(1, (50, 50, 10, 10), 0.8),
        det(2, (0, 0, 10, 5), 0.7),
        det(1, (22, 0, 10, 10), 0.6),
    ]


def test_hand_case_matches_the_paper_derivation(hand_gt, hand_results):
    result = evaluate_coco(hand_gt, hand_results)
    assert list(result.stats) == list(STAT_NAMES)
    for name, expected in HAND_STATS.items():
        assert result.stats[name] == pytest.approx(float(expected), abs=1e-12), name
    assert result.per_class_ap["cow"]["AP50"] == pytest.approx(337 / 404, abs=1e-12)
    assert result.per_class_ap["cow"]["AP"] == pytest.approx(1759 / 4040, abs=1e-12)


def test_hand_case_per_image_tp_fp_fn(hand_gt, hand_results):
    result = evaluate_coco(hand_gt, hand_results)
    # Detection indices count within each image in results order: image 1 holds d1, d2, d4.
    image1, image2 = result.per_image[1], result.per_image[2]
    assert [(d, g) for d, g, _ in image1["tp"]] == [(0, 0), (2, 1)]
    assert [iou for _, _, iou in image1["tp"]] == pytest.approx([1.0, 2 / 3])
    assert image1["fp"] == [1] and image1["fn"] == [] and image1["ignored"] == []
    assert image2["tp"] == [(0, 0, 0.5)] and image2["fp"] == [] and image2["fn"] == []
    without_d4 = evaluate_coco(hand_gt, hand_results[:3])
    assert without_d4.per_image[1]["fn"] == [1]


def test_hand_case_curves(hand_gt, hand_results):
    result = evaluate_coco(hand_gt, hand_results)
    curve50 = result.pr_curves["iou50"]["per_class"]["cow"]
    # Precision is tp / (tp + fp + eps) as in pycocotools, so "1" reads 1 - 2.2e-16.
    assert curve50 == pytest.approx([1.0] * 34 + [0.75] * 67, abs=1e-15)
    assert result.pr_curves["iou50"]["mean"] == curve50
    assert result.pr_curves["iou75"]["per_class"]["cow"][34:] == [0.0] * 67
    sweep = result.ap50_vs_score_threshold
    at = sweep["thresholds"].index(0.8)  # keeps d1 (TP) and d2 (FP)
    assert sweep["precision"][at] == 0.5 and sweep["recall"][at] == pytest.approx(1 / 3)
    assert sweep["f1"][at] == pytest.approx(0.4)


def test_empty_detections(hand_gt):
    result = evaluate_coco(hand_gt, [])
    for name in STAT_NAMES:
        assert result.stats[name] == (-1.0 if name[-1] in "ml" else 0.0), name
    assert result.per_image[1]["fn"] == [0, 1] and result.per_image[2]["fn"] == [0]
    assert result.ap50_vs_score_threshold["ap50"] == [0.0] * len(
        result.ap50_vs_score_threshold["thresholds"]
    )


def crowd_case() -> tuple[dict, list]:
    # One cow and one crowd region. d1 hits the cow. d2 and d3 lie inside the crowd box: crowd IoU
    # is intersection over the detection's own area = 1, so both match the crowd (a crowd box takes
    # any number of matches) and are ignored, not false positives. So AP = AR = 1 (to 1 ulp).
    gt = {
        "images": [{"id": 5}],
        "annotations": [ann(1, 5, (0, 0, 10, 10)), ann(2, 5, (0, 0, 100, 100), iscrowd=1)],
        "categories": [{"id": 1, "name": "cow"}],
    }
    results = [
        det(5, (0, 0, 10, 10), 0.9),
        det(5, (50, 50, 20, 20), 0.8),
        det(5, (60, 60, 20, 20), 0.7),
    ]
    return gt, results


def test_crowd_boxes_absorb_detections_and_are_never_missed():
    result = evaluate_coco(*crowd_case())
    assert result.stats["AP"] == pytest.approx(1.0) and result.stats["AR100"] == 1.0
    assert result.per_image[5] == {"tp": [(0, 0, 1.0)], "fp": [], "fn": [], "ignored": [1, 2]}
    assert result.per_class_ap["cow"]["num_gt"] == 1


def test_small_cases_equal_pycocotools(hand_gt, hand_results):
    for gt, results in [(hand_gt, hand_results), crowd_case()]:
        coco = pycocotools_eval(gt, results)
        np.testing.assert_array_equal(evaluate_coco(gt, results).stats_array, coco.stats)


# --- the reference --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference():
    folder = shared_path(REFERENCE)
    gt = json.loads((folder / "instances_val2014_100.json").read_text())
    results = json.loads((folder / "fakebbox100_results.json").read_text())
    expected = json.loads((folder / "expected.json").read_text())
    return gt, results, expected


def test_reference_stats_are_exact(reference):
    gt, results, expected = reference
    assert expected["order"] == list(STAT_NAMES)
    result = evaluate_coco(gt, results)
    np.testing.assert_allclose(result.stats_array, expected["bbox"], rtol=0, atol=1e-9)


def test_reference_paths_and_per_image_agree_with_pycocotools(reference):
    gt, results, _ = reference
    folder = shared_path(REFERENCE)
    result = evaluate_coco(
        folder / "instances_val2014_100.json", str(folder / "fakebbox100_results.json")
    )
    coco = pycocotools_eval(gt, results)
    np.testing.assert_array_equal(result.stats_array, coco.stats)
    # TP / FP / ignored counts per image at IoU .5, all areas, 100 detections.
    counts: dict = {}
    for e in coco.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        matched, ignored = e["dtMatches"][0] > 0, e["dtIgnore"][0].astype(bool)
        missed = (e["gtMatches"][0] == 0) & (e["gtIgnore"] == 0)
        c = counts.setdefault(e["image_id"], np.zeros(4, int))
        c += [(matched & ~ignored).sum(), (~matched & ~ignored).sum(), missed.sum(), ignored.sum()]
    for image_id, entry in result.per_image.items():
        ours = [len(entry[k]) for k in ("tp", "fp", "fn", "ignored")]
        assert ours == list(counts.get(image_id, [0, 0, 0, 0])), image_id


def test_ap50_sweep_equals_fresh_evaluations(reference):
    gt, results, _ = reference
    result = evaluate_coco(gt, results, score_thresholds=[0.0, 0.3, 0.55, 0.9])
    sweep = result.ap50_vs_score_threshold
    assert sweep["ap50"][0] == result.stats["AP50"]
    for threshold, ap50 in zip(sweep["thresholds"][1:], sweep["ap50"][1:]):
        kept = [r for r in results if r["score"] >= threshold]
        assert ap50 == evaluate_coco(gt, kept).stats["AP50"], threshold
    n_tp = sum(len(e["tp"]) for e in result.per_image.values())
    n_fp = sum(len(e["fp"]) for e in result.per_image.values())
    assert sweep["precision"][0] == n_tp / (n_tp + n_fp)


def test_result_survives_json(reference):
    gt, results, _ = reference
    result = evaluate_coco(gt, results)
    assert EvalResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- random sets against pycocotools ---------------------------------------------------------
def synthetic_set(seed: int, coarse: bool) -> tuple[dict, list]:
    """Random images, classes and boxes: crowds, area fields unlike box areas, groups over 100
    detections, and (``coarse``) many tied scores and IoUs."""
    rng = np.random.default_rng(seed)

    def box():
        xywh = [*rng.uniform(0, 400, 2), *rng.uniform(2, 200, 2)]
        return [float(max(round(v / 10) * 10, 10)) for v in xywh] if coarse else xywh

    images = [{"id": int(i)} for i in rng.choice(1000, 25, replace=False)]
    cat_ids = [int(c) for c in rng.choice(90, 4, replace=False) + 1]
    anns, results = [], []
    for im in images:
        boxes = []
        for _ in range(rng.integers(0, 12)):
            xywh, c = box(), int(rng.choice(cat_ids))
            area = xywh[2] * xywh[3] * (rng.uniform(0.4, 1) if rng.random() < 0.7 else 1)
            anns.append(ann(len(anns) + 1, im["id"], xywh, c, int(rng.random() < 0.1), area))
            boxes.append((xywh, c))
        for _ in range(rng.integers(0, 130) if rng.random() < 0.3 else rng.integers(0, 15)):
            if boxes and rng.random() < 0.7:
                xywh, c = boxes[rng.integers(len(boxes))]
                x, y, w, h = np.asarray(xywh) + rng.normal(0, 0.15, 4) * np.r_[xywh[2:], xywh[2:]]
                xywh = [x, y, max(w, 1), max(h, 1)]
                if coarse:
                    xywh = [float(max(round(v / 10) * 10, 10)) for v in xywh]
                c = int(rng.choice(cat_ids)) if rng.random() < 0.2 else c
            else:
                xywh, c = box(), int(rng.choice(cat_ids))
            score = float(np.round(rng.random(), 1 if coarse else 4))
            results.append(det(im["id"], [float(v) for v in xywh], score, c))
    categories = [{"id": c, "name": f"class{c}"} for c in cat_ids]
    return {"images": images, "annotations": anns, "categories": categories}, results


@pytest.mark.parametrize(("seed", "coarse"), [(0, False), (1, True), (2, False), (3, True)])
def test_random_sets_equal_pycocotools(seed, coarse):
    gt, results = synthetic_set(seed, coarse)
    ours = evaluate_coco(gt, results)
    coco = pycocotools_eval(gt, results)
    np.testing.assert_allclose(ours.stats_array, coco.stats, rtol=0, atol=1e-12)
    for k, cat_id in enumerate(coco.params.catIds):  # per class AP at 100 detections, all areas
        s = coco.eval["precision"][:, :, k, 0, 2]
        expected = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
        assert ours.per_class_ap[f"class{cat_id}"]["AP"] == pytest.approx(expected, abs=1e-12)


# --- class mapping and confusions ------------------------------------------------------------
def test_other_classes_are_reported_as_confusions_not_scored(hand_gt, hand_results):
    dog = 18
    assert NAME_BY_CATEGORY_ID[dog] == "dog"
    extra = [det(1, (1, 0, 10, 10), 0.95, dog), det(2, (300, 300, 5, 5), 0.5, dog)]
    result = evaluate_coco(hand_gt, hand_results + extra)
    assert result.stats == evaluate_coco(hand_gt, hand_results).stats
    assert result.confusions == {"dog on cow": 1}
    assert result.unscored == {"dog": 2}
    assert result.per_image[1]["ignored"] == [3]  # the dog, 4th entry of image 1


def test_results_in_coco_ids_are_scored_by_name(hand_gt, hand_results):
    coco_model = [{**r, "category_id": 21} for r in hand_results]  # COCO's cow
    result = evaluate_coco(hand_gt, coco_model, result_category_names=NAME_BY_CATEGORY_ID)
    assert result.stats == evaluate_coco(hand_gt, hand_results).stats
    assert evaluate_coco(hand_gt, coco_model).unscored == {"cow": 4}


def test_streaming_evaluator_equals_evaluate_coco(hand_gt, hand_results):
    evaluator = DetectionEvaluator(["cow"])
    for image in hand_gt["images"]:
        anns = [a for a in hand_gt["annotations"] if a["image_id"] == image["id"]]
        rows = [r for r in hand_results if r["image_id"] == image["id"]]
        rows.append(det(image["id"], (0, 0, 10, 10), 0.99, 18))
        gt_xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        dets = Detections.from_coco_results(rows, names_by_category_id={1: "cow", 18: "dog"})
        evaluator.update(image["id"], gt_xyxy, ["cow"] * len(anns), dets)
    result = evaluator.compute()
    expected = evaluate_coco(hand_gt, hand_results)
    assert result.stats == expected.stats
    assert result.confusions == {"dog on cow": 2}
    assert result.per_image[1]["tp"] == expected.per_image[1]["tp"]
    evaluator.reset()
    assert evaluator.compute().stats["AP"] == -1.0


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], "lacks score"),
        ([det(99, (0, 0, 1, 1), 0.5)], "image_id 99"),
        ([det(1, (0, 0, 1), 0.5)], "bbox"),
        (["not an object"], "not a JSON object"),
        ('[{"image_id": 1,', "not valid JSON"),
        ({"image_id": 1}, "JSON list"),
    ],
)
def test_bad_results_raise_one_line_errors(hand_gt, results, message):
    with pytest.raises(CowdemoError, match=message) as info:
        evaluate_coco(hand_gt, results)
    assert "\n" not in str(info.value)


def test_bad_ground_truth_raises(tmp_path):
    with pytest.raises(CowdemoError, match="Cannot read"):
        evaluate_coco(tmp_path / "missing.json", [])
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(CowdemoError, match="not valid JSON"):
        evaluate_coco(tmp_path / "broken.json", [])
    with pytest.raises(CowdemoError, match="images"):
        evaluate_coco({"annotations": []}, [])
