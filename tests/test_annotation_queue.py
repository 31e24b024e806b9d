"""The "annotate next" queue (cowdemo.annotation_queue, `cowdemo datasets next`): the score's
parts as documented, and the ranking with real models (YOLOX-Nano from ../shared)."""

from __future__ import annotations

import numpy as np
import pytest

from cowdemo import images
from cowdemo.annotation_queue import (
    describe,
    disagreement,
    queue_neighbour,
    rank_images,
    switch_closeness,
    uncertainty,
)
from cowdemo.cli import main
from cowdemo.coco import COCO_CLASSES
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_scene
from cowdemo.detections import Detections


def dets(boxes, scores=None, names=None) -> Detections:
    n = len(boxes)
    names = names or ["cow"] * n
    return Detections(np.asarray(boxes, float).reshape(-1, 4),
                      np.asarray(scores or [0.9] * n, float), np.zeros(n, int),
                      np.asarray(names, dtype=object))


COWS = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]


def test_disagreement_counts_unmatched_boxes_and_other_classes():
    value, text = disagreement(dets(COWS), dets(COWS[:1]), "A", "B")
    assert value == pytest.approx(2 / 3)
    assert text == "A sees 3 cows, B sees 1 cow (2 boxes without a match)"
    value, text = disagreement(dets(COWS), dets([[1, 0, 11, 10], *COWS[1:]]), "A", "B")
    assert value == 0 and text == "A and B agree: 3 cows"
    value, text = disagreement(dets(COWS[:1]), dets(COWS[:1], names=["horse"]), "A", "B")
    assert value == 1 and text == "A sees 1 cow, B sees 1 horse (1 with another class)"
    assert disagreement(dets([]), dets([]))[0] == 0


def test_uncertainty_and_switch_closeness():
    sure, _ = uncertainty(dets(COWS, [0.95, 0.9, 0.99]), 0.5)
    weak, text = uncertainty(dets(COWS, [0.45, 0.55, 0.6]), 0.5, "A")
    nothing, none_text = uncertainty(dets([]), 0.5, "A")
    assert sure == pytest.approx(0.5 / 4) and weak == pytest.approx(0.5 + 0.5)
    assert text == ("3 boxes of A score near the 0.50 threshold (0.35-0.65); A has no confident "
                    "box (score ≥ 0.65)")
    assert nothing == 0.5 and none_text == "A has no confident box (score ≥ 0.65)"
    near = {"video": {"nearest_break": {"frame": 21, "kind": "break", "distance": 2}}}
    assert switch_closeness(near) == (pytest.approx(1 / 3), "2 frames from a track break "
                                                            "(frame 21)")
    assert switch_closeness({"file_name": "a.jpg"}) == (0.0, "")
    assert queue_neighbour([5, 2, 9], 2, 1) == 9 and queue_neighbour([5, 2, 9], 5, -1) is None
    assert queue_neighbour([5, 2, 9], 7, 1) == 5


def test_frames_near_a_break_come_first(tmp_path):
    store = DatasetStore(tmp_path)
    store.create("v")
    files = [(f"{i}.png", images.encode_png(make_scene(seed=i, width=64, height=48).image))
             for i in range(3)]
    ids = store.add_images("v", files, extra=[
        {"video": {"frame": f, "nearest_break": {"frame": 10, "kind": "suspected",
                                                 "distance": abs(f - 10)}}}
        for f in (4, 10, 12)])
    same = {i: dets(COWS) for i in ids}
    queue = rank_images(store.get("v"), {"A": same, "B": same})
    assert [q.image_id for q in queue] == [ids[1], ids[2], ids[0]]
    assert queue[0].reasons[0] == "at a suspected id switch (frame 10)"
    assert "A and B agree: 3 cows" in queue[0].reasons


@pytest.mark.slow
def test_disagreement_ranks_above_agreement_with_real_models(tmp_path, yolox_nano_path):
    """Model A: YOLOX-Nano. Model B: the same network with one class named wrongly (a cow is
    a "horse" to it), so it finds the same boxes and disagrees exactly where a cow is."""
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    horse = tuple("horse" if c == "cow" else c for c in COCO_CLASSES)
    a = YoloxOnnxDetector(yolox_nano_path)
    b = YoloxOnnxDetector(yolox_nano_path, classes=horse, name="yolox_horses")
    store = DatasetStore(tmp_path)
    store.create("herd")
    with_cow = make_scene(seed=2).image  # YOLOX-Nano finds a cow here at 0.77
    empty = make_scene(seed=5, n_animals=0).image  # a pasture without cows
    ids = store.add_images("herd", [("empty.png", images.encode_png(empty)),
                                    ("cow.png", images.encode_png(with_cow))])
    dataset = store.get("herd")
    predictions = {d.name: {i: d.predict(dataset.read_image(i)) for i in ids} for d in (a, b)}
    assert len(predictions["yolox_nano"][ids[1]].filter(0.5, ["cow"])) >= 1
    queue = rank_images(dataset, predictions, 0.5)
    assert [q.image_id for q in queue] == [ids[1], ids[0]]
    first, last = queue
    assert first.disagreement > 0 == last.disagreement and first.score > last.score
    shown = {m: p[ids[1]].filter(0.5) for m, p in predictions.items()}
    assert first.reasons[0] == (
        f"yolox_nano sees {describe(shown['yolox_nano'])}, yolox_horses sees "
        f"{describe(shown['yolox_horses'])} ({first.reasons[0].split('(')[-1]}")
    assert "cow" in first.reasons[0] and "horse" in first.reasons[0]
    assert "with another class" in first.reasons[0]
    assert "yolox_nano and yolox_horses agree" in last.reason


@pytest.mark.slow
def test_cli_next_prints_the_queue(tmp_path, yolox_nano_path, capsys):
    from cowdemo.models.yolox_onnx import YoloxOnnxDetector

    store = DatasetStore(tmp_path)
    store.create("herd")
    ids = store.add_images("herd", [(f"{s}.png", images.encode_png(make_scene(seed=s).image))
                                    for s in (2, 5, 7)])
    store.mark_done("herd", ids[2])
    code = main(["datasets", "--root", str(tmp_path), "next", "herd", "--model",
                 str(yolox_nano_path), "--classes", "cow", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    detector = YoloxOnnxDetector(yolox_nano_path)
    dataset = store.get("herd")
    expected = rank_images(dataset, {"yolox_nano": {
        i: detector.predict(dataset.read_image(i)) for i in ids[:2]}}, 0.5, ["cow"])
    lines = printed.splitlines()
    assert lines[0].startswith("herd: 2 image(s) not done, best to label first")
    assert [int(line.split()[2]) for line in lines[1::2]] == [q.image_id for q in expected]
    assert [line.strip() for line in lines[2::2]] == [q.reason for q in expected]
    assert main(["datasets", "--root", str(tmp_path), "next", "herd"]) == 2
    assert "--model A [--model B]" in capsys.readouterr().err
