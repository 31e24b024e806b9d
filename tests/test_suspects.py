"""Label-error suspects (cowdemo.evaluation.suspects): the two rules, their thresholds, several
models, and only the ground truth's images."""

from __future__ import annotations

import pytest

from cowdemo.evaluation.suspects import find_suspects

GT = {
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


def det(image_id, bbox, score, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_missing_and_stray_boxes():
    results = {
        "A": [det(1, [11, 11, 50, 50], 0.95),  # matches the cow: fine
              det(1, [100, 10, 40, 40], 0.9),  # no box there: missing
              det(1, [100, 100, 20, 20], 0.3),  # not confident: not missing
              det(1, [120, 120, 40, 40], 0.99, category_id=1)],  # a cow over the calf box
        "B": [det(1, [101, 11, 40, 40], 0.8)],  # the same missing box, seen by B too
    }
    suspects = find_suspects(GT, results)
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
    gt = {**GT, "annotations": GT["annotations"][:1]}
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
    kinds = {(s.kind, s.image_id) for s in find_suspects(GT, results)}
    assert kinds == {("stray", 1)}  # the cow and the calf of image 1; nothing of 2 or 3
    assert len(find_suspects(GT, results)) == 2
    assert find_suspects({"images": [], "annotations": [], "categories": []}, results) == []
