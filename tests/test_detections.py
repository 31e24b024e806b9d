import json

import numpy as np
import pytest

from cowdemo.coco import (
    CATEGORY_ID_BY_NAME,
    COCO_CLASSES,
    category_id_to_contiguous,
    contiguous_to_category_id,
)
from cowdemo.detections import Detections, box_iou
from cowdemo.draw import color_for, draw_detections
from cowdemo.errors import CowdemoError


def sample() -> Detections:
    return Detections.from_class_ids(
        [[10, 20, 110, 220], [50, 50, 60, 70], [0, 0, 5, 5]],
        [0.9, 0.4, 0.7],
        [19, 16, 0],
        COCO_CLASSES,
    )


def test_id_spaces_known_values():
    assert CATEGORY_ID_BY_NAME["cow"] == 21 and CATEGORY_ID_BY_NAME["dog"] == 18
    assert category_id_to_contiguous(21) == 19
    assert contiguous_to_category_id(16) == 18
    assert contiguous_to_category_id(79) == 90
    assert [category_id_to_contiguous(contiguous_to_category_id(i)) for i in range(80)] == list(
        range(80)
    )


def test_validation_rejects_bad_shapes():
    with pytest.raises(ValueError, match="scores has 1 entries for 2 boxes"):
        Detections([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5], [0, 0], ["cow", "cow"])
    with pytest.raises(ValueError, match="x2 >= x1"):
        Detections([[5, 0, 1, 1]], [0.5], [0], ["cow"])
    with pytest.raises(ValueError, match="NaN"):
        Detections([[np.nan, 0, 1, 1]], [0.5], [0], ["cow"])


def test_names_indexing_and_filter():
    d = sample()
    assert list(d.class_names) == ["cow", "dog", "person"]
    assert len(d[d.scores > 0.5]) == 2
    assert list(d.filter(0.5, ["cow"]).class_names) == ["cow"]
    assert list(d.filter(0.0, ["dog", "person"]).class_ids) == [16, 0]
    assert list(d.sorted_by_score().scores) == [0.9, 0.7, 0.4]
    cows, others = d.split(["cow"])
    assert list(cows.class_names) == ["cow"] and list(others.class_names) == ["dog", "person"]
    everything, nothing = d.split(None)
    assert everything == d and len(nothing) == 0
    assert d.summary() == "1 cow (best 0.90), 1 person (best 0.70), 1 dog (best 0.40)"
    assert Detections.empty().summary() == "no boxes"
    assert d[1].xyxy.tolist() == [[50, 50, 60, 70]]
    np.testing.assert_allclose(d.area, [20000, 200, 25])
    np.testing.assert_allclose(d.xywh[0], [10, 20, 100, 200])
    np.testing.assert_allclose(d.centers[0], [60, 120])


def test_empty_and_merge():
    e = Detections.empty()
    assert len(e) == 0 and e.xyxy.shape == (0, 4)
    m = Detections.merge([sample(), e, sample()[0]])
    assert len(m) == 4 and m.track_ids is None
    t = Detections([[0, 0, 1, 1]], [1.0], [0], ["cow"], [7])
    assert Detections.merge([t, t]).track_ids.tolist() == [7, 7]
    assert Detections.merge([]) == Detections.empty()


def test_coco_results_round_trip_uses_category_ids():
    rows = sample().to_coco_results(image_id=42)
    assert [r["category_id"] for r in rows] == [21, 18, 1]
    assert rows[0] == {"image_id": 42, "category_id": 21, "bbox": [10, 20, 100, 200], "score": 0.9}
    back = Detections.from_coco_results(json.loads(json.dumps(rows)), image_id=42)
    assert back == sample()
    assert len(Detections.from_coco_results(rows, image_id=7)) == 0


def test_coco_results_unknown_class_dropped_and_custom_categories():
    d = Detections([[0, 0, 2, 2], [1, 1, 3, 3]], [0.5, 0.6], [0, 1], ["cow", "tractor"])
    rows = d.to_coco_results(1, {"cow": 1})
    assert rows == [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.5}]


def test_coco_results_malformed_gives_one_line_error():
    with pytest.raises(CowdemoError, match="entry 0 is malformed") as info:
        Detections.from_coco_results([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    assert "\n" not in str(info.value)
    with pytest.raises(CowdemoError, match="negative"):
        Detections.from_coco_results([{"image_id": 1, "category_id": 21, "bbox": [0, 0, -1, 1]}])


def test_notebook_view_matches_detectron2_fields():
    view = sample().notebook_view()
    assert view["pred_classes"].tolist() == [19, 16, 0]
    assert view["pred_boxes"].dtype == np.float32 and view["pred_boxes"].shape == (3, 4)
    fine_tuned = Detections([[0, 0, 1, 1]], [0.9], [0], ["cow"])
    assert fine_tuned.notebook_view()["pred_classes"].tolist() == [19]
    assert fine_tuned.notebook_view(classes=["cow"])["pred_classes"].tolist() == [0]


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_draw_marks_box_pixels_with_class_colour():
    image = np.zeros((100, 120, 3), np.uint8)
    d = Detections([[10, 30, 60, 90]], [0.88], [0], ["cow"])
    drawn = draw_detections(image, d)
    assert image.sum() == 0, "the input must not be modified"
    assert tuple(drawn[60, 10]) == color_for("cow")  # left edge, below the label
    assert drawn[60, 35].sum() == 0  # box interior untouched
    tracked = Detections([[10, 30, 60, 90]], [0.88], [0], ["cow"], [3])
    assert tuple(draw_detections(image, tracked)[60, 10]) == color_for("track-3")
    assert color_for("sheep") == color_for("sheep")
