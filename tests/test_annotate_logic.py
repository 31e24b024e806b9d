"""The Annotate page's logic without a browser: canvas ⇄ image coordinates for any size and
aspect, what the canvas sends back (as Fabric.js serialises it), pre-annotation and the table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cowdemo import annotation as ann
from cowdemo.detections import Detections

SIZES = [(640, 480), (1000, 700), (4000, 3000), (300, 2000), (2000, 300), (20, 10), (1, 1),
         (1140, 760), (333, 777), (7919, 31)]


@pytest.mark.parametrize("size", list(ann.CANVAS_SIZES.values()))
@pytest.mark.parametrize("image", SIZES)
def test_fit_keeps_aspect_and_stays_inside(image, size):
    geometry = ann.CanvasGeometry.fit(*image, *size)
    assert geometry.canvas_width <= size[0] and geometry.canvas_height <= size[1]
    assert max(geometry.canvas_width / size[0], geometry.canvas_height / size[1]) > 0.99 or (
        geometry.scale_x >= 4.0 - 1e-9 or geometry.canvas_width == 1)
    # aspect kept to the nearest canvas pixel
    assert abs(geometry.canvas_width - image[0] * geometry.scale_y) <= 0.5 + 1e-9 or \
        abs(geometry.canvas_height - image[1] * geometry.scale_x) <= 0.5 + 1e-9


def test_fit_examples():
    assert ann.CanvasGeometry.fit(1000, 700, 800, 600) == ann.CanvasGeometry(1000, 700, 800, 560)
    assert ann.CanvasGeometry.fit(4000, 3000, 800, 600).canvas_width == 800
    small = ann.CanvasGeometry.fit(20, 10, 800, 600)  # enlarged at most 4x
    assert (small.canvas_width, small.canvas_height) == (80, 40)


@pytest.mark.parametrize("image", SIZES)
def test_canvas_image_round_trip_is_exact(image):
    rng = np.random.default_rng(sum(image))
    for size in ann.CANVAS_SIZES.values():
        geometry = ann.CanvasGeometry.fit(*image, *size)
        # the whole image maps onto the whole canvas
        full = geometry.to_canvas([0, 0, *image])
        assert full == {"left": 0, "top": 0, "width": geometry.canvas_width,
                        "height": geometry.canvas_height}
        for _ in range(50):
            x = np.sort(rng.uniform(0, image[0], 2))
            y = np.sort(rng.uniform(0, image[1], 2))
            box = [x[0], y[0], x[1], y[1]]
            rect = geometry.to_canvas(box)
            back = geometry.to_image(rect["left"], rect["top"], rect["width"], rect["height"])
            assert np.allclose(back, box, rtol=0, atol=1e-9 * max(image))


def fabric_json(drawing: dict, digits: int = 4) -> dict:
    """What the browser sends back: Fabric's toObject() of each object, numbers rounded to
    NUM_FRACTION_DIGITS = 4, plus the many properties Fabric adds."""
    out = []
    for obj in drawing["objects"]:
        sent = {"version": "6.7.1", "visible": True, "skewX": 0, "skewY": 0, "flipX": False,
                "flipY": False, "opacity": 1, "rx": 0, "ry": 0}
        for key, value in obj.items():
            sent[key] = round(value, digits) if isinstance(value, float) else value
        out.append(sent)
    return {"version": "6.7.1", "objects": out, "background": ""}


def test_untouched_boxes_come_back_exactly():
    geometry = ann.CanvasGeometry.fit(1140, 760, 800, 600)  # scale 0.7017...
    boxes = [("cow", [12.345678, 100.0, 400.25, 759.999999]), ("calf", [0.0, 0.0, 1140.0, 760.0]),
             ("cow", [12.345678, 100.0, 400.25, 759.999999])]  # duplicates are kept apart
    drawing = ann.initial_drawing(boxes, geometry, ["cow", "calf"])
    read = ann.read_drawing(fabric_json(drawing), geometry, ["cow", "calf"], "cow", boxes)
    assert read.problems == [] and read.notes == []
    assert read.boxes == boxes  # bit for bit, not just close


def test_new_box_from_the_rect_tool_is_converted_and_rounded():
    geometry = ann.CanvasGeometry.fit(1000, 700, 800, 600)  # 0.8 on both axes
    sent = {"objects": [{"type": "LabeledRect", "label": "calf", "left": 100, "top": 80,
                         "width": 200, "height": 120.3333, "scaleX": 1, "scaleY": 1,
                         "originX": "left", "originY": "top", "angle": 0}]}
    read = ann.read_drawing(sent, geometry, ["cow", "calf"], "cow")
    assert read.boxes == [("calf", [125.0, 100.0, 375.0, 250.417])]


def test_plain_rect_objects_and_empty_labels_get_the_default_class():
    geometry = ann.CanvasGeometry(100, 100, 100, 100)
    sent = {"objects": [
        {"type": "Rect", "left": 10, "top": 10, "width": 20, "height": 30},
        {"type": "LabeledRect", "label": "  ", "left": 50, "top": 50, "width": 10,
         "height": 10},
    ]}
    read = ann.read_drawing(sent, geometry, ["cow"], "cow")
    assert read.boxes == [("cow", [10.0, 10.0, 30.0, 40.0]), ("cow", [50.0, 50.0, 60.0, 60.0])]


def test_moved_and_resized_boxes_use_scale_and_origin():
    geometry = ann.CanvasGeometry(200, 100, 400, 200)  # 2x
    sent = {"objects": [
        # resized with the corner handles: Fabric keeps width and sets scaleX / scaleY
        {"type": "LabeledRect", "label": "cow", "left": 20, "top": 40, "width": 100,
         "height": 50, "scaleX": 1.5, "scaleY": 0.5},
        # centred origin
        {"type": "LabeledRect", "label": "cow", "left": 200, "top": 100, "width": 40,
         "height": 20, "originX": "center", "originY": "center"},
    ]}
    read = ann.read_drawing(sent, geometry, ["cow"], "cow")
    assert read.boxes == [("cow", [10.0, 20.0, 85.0, 32.5]), ("cow", [90.0, 45.0, 110.0, 55.0])]


def test_rotated_rect_gives_its_bounding_box():
    extent = ann.rect_extent({"left": 100, "top": 100, "width": 40, "height": 20, "angle": 90})
    # rotated 90° about its top-left corner: it now extends left of x = 100
    assert np.allclose(extent, (80, 100, 20, 40))
    extent = ann.rect_extent({"left": 0, "top": 0, "width": 10, "height": 10, "angle": 45,
                              "originX": "center", "originY": "center"})
    half = 10 * math.sqrt(2) / 2
    assert np.allclose(extent, (-half, -half, 2 * half, 2 * half))


def test_boxes_are_clipped_and_outside_boxes_left_out():
    geometry = ann.CanvasGeometry(100, 50, 200, 100)
    sent = {"objects": [
        {"type": "Rect", "left": -20, "top": -10, "width": 60, "height": 40},
        {"type": "Rect", "left": 210, "top": 10, "width": 30, "height": 30},
        {"type": "Path", "path": [["M", 0, 0], ["L", 5, 5]]},
        "not an object",
    ]}
    read = ann.read_drawing(sent, geometry, ["cow"], "cow")
    assert read.boxes == [("cow", [0.0, 0.0, 20.0, 15.0])]
    assert any("outside the image" in n for n in read.notes)
    assert any("2 shape(s)" in n for n in read.notes)


def test_unknown_label_is_a_problem_not_a_silent_change():
    geometry = ann.CanvasGeometry(100, 100, 100, 100)
    sent = {"objects": [{"type": "LabeledRect", "label": "cwo", "left": 1, "top": 1,
                         "width": 10, "height": 10}]}
    read = ann.read_drawing(sent, geometry, ["cow"], "cow")
    assert read.boxes == [] and len(read.problems) == 1
    assert "'cwo'" in read.problems[0] and "\n" not in read.problems[0]


def test_empty_or_missing_drawing_has_no_boxes():
    geometry = ann.CanvasGeometry(10, 10, 10, 10)
    for data in (None, {}, {"objects": None}, {"objects": []}):
        assert ann.read_drawing(data, geometry, ["cow"], "cow").boxes == []


def test_initial_drawing_matches_the_canvas_package_format():
    geometry = ann.CanvasGeometry(100, 100, 50, 50)
    drawing = ann.initial_drawing([("cow", [10, 20, 30, 60])], geometry, ["cow"])
    (obj,) = drawing["objects"]
    assert obj["type"] == "LabeledRect" and obj["label"] == "cow"
    assert (obj["left"], obj["top"], obj["width"], obj["height"]) == (5, 10, 10, 20)
    assert obj["scaleX"] == obj["scaleY"] == 1 and obj["originX"] == "left"


def test_same_boxes():
    a = [("cow", [1.0, 2.0, 3.0, 4.0])]
    assert ann.same_boxes(a, [("cow", [1, 2, 3, 4])])
    assert not ann.same_boxes(a, [("calf", [1, 2, 3, 4])])
    assert not ann.same_boxes(a, [("cow", [1, 2, 3, 4.001])])
    assert not ann.same_boxes(a, [])


def test_progress_text():
    assert ann.progress_text(12, 40) == "12 of 40 images done"


def dets(boxes, scores, names):
    return Detections(np.array(boxes, float), scores, [0] * len(names), names)


def test_model_boxes_threshold_filter_and_labels():
    d = dets([[0, 0, 10, 10], [5, 5, 50, 50], [1, 1, 2, 2]], [0.9, 0.8, 0.3], ["dog", "cow", "cow"])
    boxes, hidden, problems = ann.model_boxes(d, 0.5, ["cow"], None, ["cow"])
    assert boxes == [("cow", [5.0, 5.0, 50.0, 50.0])] and problems == []
    assert list(hidden.class_names) == ["dog"]
    boxes, _, _ = ann.model_boxes(d, 0.5, None, "cow", ["cow"])  # the notebook's "dog" is a cow
    assert [c for c, _ in boxes] == ["cow", "cow"]
    boxes, _, problems = ann.model_boxes(d, 0.5, None, None, ["cow"])
    assert boxes == [] and "'dog'" in problems[0]


def test_merge_never_removes_what_someone_drew():
    mine = [("cow", [0.0, 0.0, 100.0, 100.0])]
    proposed = [("cow", [2, 2, 98, 99]), ("cow", [200, 200, 300, 300])]
    merged, added = ann.merge_boxes(mine, proposed)
    assert added == 1 and merged[0] == mine[0] and merged[1] == ("cow", [200, 200, 300, 300])
    assert ann.merge_boxes([], proposed) == ([(c, list(x)) for c, x in proposed], 2)


def test_clip_to_image():
    clipped = ann.clip_to_image([("cow", [-5, -5, 20, 20]), ("cow", [200, 0, 300, 10])], 100, 50)
    assert clipped == [("cow", [0.0, 0.0, 20.0, 20.0])]


def test_table_round_trip_and_bad_rows():
    boxes = [("cow", [1.0, 2.0, 30.0, 40.0]), ("calf", [5.0, 5.0, 6.0, 7.0])]
    rows = ann.boxes_table(boxes)
    assert rows[0]["width"] == 29.0
    back, problems = ann.boxes_from_table(rows, ["cow", "calf"])
    assert back == boxes and problems == []
    bad = [{"class": None, "x1": 1, "y1": 1, "x2": 2, "y2": 2},
           {"class": "cow", "x1": 5, "y1": 1, "x2": 2, "y2": 2},
           {"class": "cow", "x1": float("nan"), "y1": 1, "x2": 2, "y2": 2}]
    back, problems = ann.boxes_from_table(bad, ["cow"])
    assert back == [] and len(problems) == 3
    first = ann.box_lines(boxes).splitlines()[0]
    assert first == "1. cow  [x1, y1, x2, y2] = [1.0, 2.0, 30.0, 40.0]"
