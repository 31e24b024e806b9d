"""Label-error suspects: a built case where each kind appears exactly as constructed, the
definitions checked box by box on the shared COCO reference with pycocotools' own IoU, and the
two rules' thresholds, ranking over several models, crowds and images outside the ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import shared_path

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.suspects import Suspect, find_suspects, suspects_table

REFERENCE = "reference/coco-map/val2014-100"


def gt_dict() -> dict:
    anns = [
        # image 1: a cow both models find, and a stray box nobody comes near
        (1, 1, [10, 10, 50, 50], 1, 0),
        (2, 1, [300, 300, 40, 40], 1, 0),
        # image 2: a crowd region (never stray) and a dog box
        (3, 2, [0, 0, 100, 100], 1, 1),
        (4, 2, [200, 200, 60, 60], 2, 0),
    ]
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 400, "height": 400},
                   {"id": 2, "file_name": "b.jpg", "width": 400, "height": 400}],
        "categories": [{"id": 1, "name": "cow"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": i, "image_id": im, "bbox": b, "area": b[2] * b[3], "category_id": c,
             "iscrowd": crowd}
            for i, im, b, c, crowd in anns
        ],
    }


def det(image_id, box, score, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": box, "score": score}


def built_results() -> dict[str, list[dict]]:
    return {
        "A": [
            det(1, [11, 11, 50, 50], 0.95),           # matches cow 1
            det(1, [150, 150, 40, 40], 0.9),          # unlabelled cow, seen by A and B
            det(1, [250, 20, 30, 30], 0.6),           # unlabelled but under min_score: no suspect
            det(2, [10, 10, 20, 20], 0.99),           # inside the crowd region: not missing
            det(2, [200, 200, 60, 60], 0.8, 1),       # a cow on the dog box: missing cow
            det(7, [0, 0, 10, 10], 0.99),             # image not in the ground truth
            det(1, [11, 11, 50, 50], 0.99, 3),        # class not in the ground truth
        ],
        "B": [
            det(1, [12, 10, 50, 50], 0.9),
            det(1, [152, 151, 40, 40], 0.8),          # same unlabelled cow as A's
            det(2, [205, 205, 60, 60], 0.3, 2),       # low-score dog still saves the dog box
        ],
    }


def test_each_kind_exactly_as_built():
    suspects = find_suspects(gt_dict(), built_results())
    assert all(isinstance(s, Suspect) for s in suspects)
    by_kind = {(s.kind, s.image_id, s.category): s for s in suspects}
    assert sorted(by_kind) == [("missing", 1, "cow"), ("missing", 2, "cow"), ("stray", 1, "cow")]
    both = by_kind[("missing", 1, "cow")]
    assert both.models == ("A", "B") and both.score == 0.9
    assert both.box == (150.0, 150.0, 40.0, 40.0) and both.rank == pytest.approx(0.9)
    assert both.file_name == "a.jpg"
    one = by_kind[("missing", 2, "cow")]
    assert one.models == ("A",) and one.score == 0.8 and one.rank == pytest.approx(0.4)
    stray = by_kind[("stray", 1, "cow")]
    assert stray.box == (300.0, 300.0, 40.0, 40.0) and stray.score is None
    assert stray.models == ("A", "B") and stray.rank == pytest.approx(1.0)
    assert [s.rank for s in suspects] == sorted((s.rank for s in suspects), reverse=True)
    rows = suspects_table(suspects)
    assert json.loads(json.dumps(rows)) == rows and rows[0]["kind"] == "stray"


def test_thresholds_move_the_lists():
    # min_score 0.5 brings in A's 0.6 detection; a loose iou of 0.0 makes nothing missing
    # where a same-class box exists at all.
    loose = find_suspects(gt_dict(), built_results(), min_score=0.5)
    assert ("missing", (250.0, 20.0, 30.0, 30.0)) in {(s.kind, s.box) for s in loose}
    no_models = find_suspects(gt_dict(), {})
    assert sorted((s.image_id, s.category) for s in no_models) == [(1, "cow"), (1, "cow"),
                                                                    (2, "dog")]
    assert all(s.kind == "stray" and s.models == () for s in no_models)


def test_bad_input_is_a_clear_error():
    with pytest.raises(CowdemoError, match="results of 'A'"):
        find_suspects(gt_dict(), {"A": [{"image_id": 1}]})
    with pytest.raises(CowdemoError, match="ground truth"):
        find_suspects({"images": []}, {})


def test_definitions_hold_on_the_coco_reference():
    """Every suspect, and every non-suspect, checked against pycocotools' own IoU."""
    mask = pytest.importorskip("pycocotools.mask")
    folder = shared_path(REFERENCE)
    gt = json.loads((folder / "instances_val2014_100.json").read_text())
    res = json.loads((folder / "fakebbox100_results.json").read_text())
    half = {"all": res, "high": [r for r in res if r["score"] >= 0.5]}
    suspects = find_suspects(gt, half)
    kinds = {s.kind for s in suspects}
    assert kinds == {"missing", "stray"}

    def boxes(rows, image_id, cat):
        return [r for r in rows if r["image_id"] == image_id and r["category_id"] == cat]

    cat_id = {c["name"]: c["id"] for c in gt["categories"]}
    missing = {(s.image_id, s.category, s.box) for s in suspects if s.kind == "missing"}
    stray = {(s.image_id, s.category, s.box) for s in suspects if s.kind == "stray"}
    image_ids = {im["id"] for im in gt["images"]}
    names = {c["id"]: c["name"] for c in gt["categories"]}
    # stray: every non-crowd box that no detection of any model reaches IoU 0.1 with
    for a in gt["annotations"]:
        dets = boxes(res, a["image_id"], a["category_id"])
        ious = mask.iou([d["bbox"] for d in dets], [a["bbox"]], [0]) if dets else np.zeros((0, 1))
        expected = not a["iscrowd"] and (len(dets) == 0 or np.max(ious) < 0.1)
        key = (a["image_id"], names[a["category_id"]], tuple(map(float, a["bbox"])))
        assert (key in stray) == expected, key
    # missing: each suspect box is a detection >= 0.7 with IoU < 0.5 to every same-class box
    for image_id, name, box in missing:
        g = [a for a in gt["annotations"]
             if a["image_id"] == image_id and a["category_id"] == cat_id[name]]
        if g:
            ious = mask.iou([list(box)], [a["bbox"] for a in g], [a["iscrowd"] for a in g])
            assert np.max(ious) < 0.5
    # and every such detection is covered by a suspect of its image and class
    for r in res:
        if r["score"] < 0.7 or r["image_id"] not in image_ids:
            continue
        g = [a for a in gt["annotations"]
             if a["image_id"] == r["image_id"] and a["category_id"] == r["category_id"]]
        ious = mask.iou([r["bbox"]], [a["bbox"] for a in g], [a["iscrowd"] for a in g]) if g \
            else np.zeros((1, 0))
        if ious.size == 0 or np.max(ious) < 0.5:
            same = [b for i, n, b in missing if i == r["image_id"] and n == names[r["category_id"]]]
            assert same and np.max(mask.iou([r["bbox"]], [list(b) for b in same], [0] * len(same))
                                   ) >= 0.5
    # both "models" are the same detections above 0.5, so every missing suspect has both
    assert all(s.models == ("all", "high") for s in suspects if s.kind == "missing")


# --- the two rules, their thresholds, several models, only the ground truth's images ----------
RULES_GT = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 200},
               {"id": 2, "file_name": "b.jpg", "width": 200, "height": 200}],
    "categories": [{"id": 1, "name": "cow"}, {"id": 2, "name": "calf"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500,
         "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [120, 120, 40, 40], "area": 1600,
         "iscrowd": 0},  # no model finds a calf here: stray
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 30, 30], "area": 900,
         "iscrowd": 1},  # crowd: never stray
    ],
}


def test_missing_and_stray_boxes_ranked_over_several_models():
    results = {
        "A": [det(1, [11, 11, 50, 50], 0.95),  # matches the cow: fine
              det(1, [100, 10, 40, 40], 0.9),  # no box there: missing
              det(1, [100, 100, 20, 20], 0.3),  # not confident: not missing
              det(1, [120, 120, 40, 40], 0.99, category_id=1)],  # a cow over the calf box
        "B": [det(1, [101, 11, 40, 40], 0.8)],  # the same missing box, seen by B too
    }
    suspects = find_suspects(RULES_GT, results)
    missing = [s for s in suspects if s.kind == "missing"]
    stray = [s for s in suspects if s.kind == "stray"]
    # the cow over the calf box is a missing cow (wrong class does not match) and the calf
    # is stray (no calf detection anywhere)
    assert [(s.box, s.models, s.score) for s in missing] == [
        ((100.0, 10.0, 40.0, 40.0), ("A", "B"), 0.9),  # rank 0.9: both models
        ((120.0, 120.0, 40.0, 40.0), ("A",), 0.99),  # rank 0.495: one of two
    ]
    by_box = {s.box: s for s in missing}
    assert by_box[(100.0, 10.0, 40.0, 40.0)].rank == pytest.approx(0.9)  # both models
    assert by_box[(120.0, 120.0, 40.0, 40.0)].rank == pytest.approx(0.99 / 2)  # one of two
    assert [(s.image_id, s.file_name, s.category, s.box, s.score, s.models) for s in stray] == [
        (1, "a.jpg", "calf", (120.0, 120.0, 40.0, 40.0), None, ("A", "B"))]
    assert stray[0].rank == 1.0
    assert [s.rank for s in suspects] == sorted((s.rank for s in suspects), reverse=True)


def test_thresholds_are_the_documented_ones():
    gt = {**RULES_GT, "annotations": RULES_GT["annotations"][:1]}
    # IoU with the cow box just under 0.5: missing; just over: matched
    shifted = [10 + 18, 10, 50, 50]  # IoU = 32*50 / (2*2500 - 1600) = 0.47
    assert [s.kind for s in find_suspects(gt, {"A": [det(1, shifted, 0.7)]})] == ["missing"]
    assert find_suspects(gt, {"A": [det(1, [10 + 15, 10, 50, 50], 0.7)]}) == []  # IoU 0.54
    assert find_suspects(gt, {"A": [det(1, shifted, 0.69)]}) == []  # below min_score
    assert find_suspects(gt, {"A": [det(1, shifted, 0.5)]}, min_score=0.5)[0].kind == "missing"
    # any weak overlap (IoU >= 0.1) of the right class keeps a box from being stray
    weak = [10 + 40, 10, 50, 50]  # IoU = 10*50 / (5000 - 500) = 0.11
    assert [s.kind for s in find_suspects(gt, {"A": [det(1, weak, 0.01)]})] == []
    far = [10 + 45, 10, 50, 50]  # IoU = 5*50 / (5000 - 250) = 0.05
    (stray,) = find_suspects(gt, {"A": [det(1, far, 0.01)]})
    assert stray.kind == "stray" and stray.rank == pytest.approx(1 - 250 / 4750)


def test_only_ground_truth_images_count_and_crowds_are_never_stray():
    results = {"A": [det(3, [0, 0, 10, 10], 0.99)]}  # image 3 is not in the ground truth
    kinds = {(s.kind, s.image_id) for s in find_suspects(RULES_GT, results)}
    assert kinds == {("stray", 1)}  # the cow and the calf of image 1; nothing of 2 or 3
    assert len(find_suspects(RULES_GT, results)) == 2
    assert find_suspects({"images": [], "annotations": [], "categories": []}, results) == []
