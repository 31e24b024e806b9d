"""YOLOX ONNX backend: each step on hand-made numbers, then the real YOLOX-Nano export."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from helpers import cow_photo_path

from cowdemo.coco import COCO_CLASSES
from cowdemo.detections import Detections, box_iou
from cowdemo.errors import CowdemoError
from cowdemo.models.base import Detector
from cowdemo.models.yolox_onnx import (
    YoloxOnnxDetector,
    anchor_count,
    batched_nms,
    classes_beside,
    decode_outputs,
    letterbox,
    nms,
    postprocess,
)


# --- letterbox -----------------------------------------------------------------------------
def test_letterbox_scales_into_top_left_and_pads_with_114():
    image = np.zeros((50, 100, 3), np.uint8)  # h=50, w=100
    image[..., 0] = 200  # red in RGB
    chw, ratio = letterbox(image, 64)
    assert ratio == pytest.approx(0.64)  # min(64/50, 64/100)
    assert chw.shape == (3, 64, 64) and chw.dtype == np.float32
    # 100x50 -> 64x32: rows 0..31 hold the picture, rows 32.. are padding.
    assert np.all(chw[:, 32:, :] == 114)
    # BGR order: red lands in channel 2, blue and green stay 0.
    assert np.all(chw[2, :32, :] == 200)
    assert np.all(chw[:2, :32, :] == 0)


def test_letterbox_tall_image_pads_on_the_right_and_upscales():
    image = np.full((100, 50, 3), 7, np.uint8)
    chw, ratio = letterbox(image, (416, 416))
    assert ratio == pytest.approx(4.16)
    assert np.all(chw[:, :, 208:] == 114)
    assert np.all(chw[:, :, :208] == 7)


# --- decode --------------------------------------------------------------------------------
def test_anchor_count_matches_the_three_strides():
    assert anchor_count(416) == 52 * 52 + 26 * 26 + 13 * 13 == 3549
    assert anchor_count((64, 32)) == 8 * 4 + 4 * 2 + 2 * 1


def test_decode_places_an_anchor_by_grid_and_stride():
    size = 64  # 8x8 + 4x4 + 2x2 = 84 rows
    raw = np.zeros((anchor_count(size), 85), np.float32)
    row = 2 * 8 + 3  # stride 8, grid (x=3, y=2): rows run y-major, x fastest
    raw[row, :4] = [0.5, 0.25, np.log(2.0), 0.0]
    last = anchor_count(size) - 1  # stride 32, grid (1, 1)
    raw[last, :4] = [0.0, 0.0, 0.0, np.log(3.0)]
    raw[row, 4:6] = [0.9, 0.8]
    decoded = decode_outputs(raw, size)
    np.testing.assert_allclose(decoded[row, :4], [3.5 * 8, 2.25 * 8, 2 * 8, 1 * 8], rtol=1e-6)
    np.testing.assert_allclose(decoded[last, :4], [32, 32, 32, 96], rtol=1e-6)
    # The first stride-16 row is grid (0, 0): cx = 0 + 0 * 16, w = exp(0) * 16.
    np.testing.assert_allclose(decoded[64, :4], [0, 0, 16, 16])
    assert decoded[row, 4] == pytest.approx(0.9) and decoded[row, 5] == pytest.approx(0.8)
    assert raw[row, 0] == pytest.approx(0.5)  # the input is left alone


def test_decode_rejects_a_tensor_of_the_wrong_length():
    with pytest.raises(ValueError, match="expected"):
        decode_outputs(np.zeros((10, 85), np.float32), 416)


# --- NMS -----------------------------------------------------------------------------------
def test_nms_drops_overlaps_above_the_threshold_and_orders_by_score():
    boxes = np.array(
        [
            [0, 0, 10, 10],
            [1, 0, 11, 10],  # IoU 0.818 with box 0
            [5, 0, 15, 10],  # IoU 0.333 with box 0
            [50, 50, 60, 60],
        ],
        float,
    )
    scores = np.array([0.9, 0.95, 0.5, 0.3])
    assert nms(boxes, scores, 0.45).tolist() == [1, 2, 3]
    # IoU(1, 2) = 6/14 = 0.43: a stricter threshold removes box 2 as well.
    assert nms(boxes, scores, 0.4).tolist() == [1, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_keeps_overlapping_boxes_of_different_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, np.array([19, 16, 19]), 0.45).tolist() == [0, 1]


# --- postprocess -----------------------------------------------------------------------------
def _decoded_rows(*rows):
    """Decoded rows (cx, cy, w, h, objectness, class id, class score) -> (n, 85)."""
    out = np.zeros((len(rows), 85), np.float32)
    for i, (cx, cy, w, h, obj, cls, score) in enumerate(rows):
        out[i, :5] = [cx, cy, w, h, obj]
        out[i, 5 + cls] = score
    return out


def test_postprocess_maps_boxes_back_through_the_ratio_and_clips():
    decoded = _decoded_rows(
        (20, 10, 10, 4, 0.9, 19, 0.9),  # cow, score 0.81
        (21, 10, 10, 4, 0.9, 19, 0.5),  # duplicate cow, suppressed
        (20, 10, 10, 4, 0.8, 16, 0.5),  # dog on the same spot survives (class-aware)
        (62, 30, 8, 8, 0.5, 0, 0.5),  # person past the right edge, clipped
        (5, 5, 2, 2, 0.2, 0, 0.2),  # score 0.04 < 0.05 floor
    )
    xyxy, scores, ids = postprocess(decoded, ratio=0.5, image_shape=(70, 120, 3))
    assert ids.tolist() == [19, 16, 0]
    np.testing.assert_allclose(scores, [0.81, 0.4, 0.25], rtol=1e-6)
    np.testing.assert_allclose(xyxy[0], [30, 16, 50, 24])  # (15, 8, 25, 12) / 0.5
    np.testing.assert_allclose(xyxy[2], [116, 52, 120, 68])  # x2 132 clipped to w=120


def test_postprocess_honours_min_score_and_max_detections():
    rows = [(10 + 20 * i, 10, 4, 4, 1.0, 19, 0.1 + i / 100) for i in range(30)]
    decoded = _decoded_rows(*rows)
    _, scores, _ = postprocess(decoded, 1.0, (100, 1000), min_score=0.2, max_detections=5)
    np.testing.assert_allclose(scores, [0.39, 0.38, 0.37, 0.36, 0.35], rtol=1e-6)
    xyxy, scores, ids = postprocess(decoded, 1.0, (100, 1000), min_score=0.9)
    assert xyxy.shape == (0, 4) and scores.shape == (0,) and ids.shape == (0,)


# --- classes -------------------------------------------------------------------------------
def test_classes_beside_prefers_canonical_coco_names_for_80_lines(tmp_path):
    model = tmp_path / "m.onnx"
    assert classes_beside(model) == COCO_CLASSES
    voc_style = [*COCO_CLASSES]
    voc_style[3], voc_style[4] = "motorbike", "aeroplane"
    (tmp_path / "coco_classes.txt").write_text("\n".join(voc_style) + "\n")
    assert classes_beside(model) == COCO_CLASSES
    (tmp_path / "coco_classes.txt").write_text("cow\n\nsheep\n")
    assert classes_beside(model) == ("cow", "sheep")


# --- errors --------------------------------------------------------------------------------
def test_missing_file_is_a_one_line_cowdemo_error(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(CowdemoError, match="does not exist") as info:
        YoloxOnnxDetector(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_text_file_named_onnx_is_a_one_line_cowdemo_error(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(CowdemoError, match="not a readable ONNX model") as info:
        YoloxOnnxDetector(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_wrong_class_count_is_reported_as_an_output_shape_error(yolox_nano_path, tmp_path):
    with pytest.raises(CowdemoError, match="outputs"):
        YoloxOnnxDetector(yolox_nano_path, classes=["cow", "sheep"])


# --- the real YOLOX-Nano export --------------------------------------------------------------
@pytest.fixture
def nano(yolox_nano_path) -> YoloxOnnxDetector:
    return YoloxOnnxDetector(yolox_nano_path)


@pytest.mark.slow
def test_real_model_reads_its_shapes_and_names(nano):
    assert isinstance(nano, Detector)
    assert nano.input_size == (416, 416) and not nano.batch_dynamic
    assert nano.device == "cpu" and nano.name == "yolox_nano"
    assert nano.classes == COCO_CLASSES and nano.classes[19] == "cow"


@pytest.mark.slow
def test_real_model_runs_on_synthetic_images_of_any_size(nano):
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, (480, 854, 3), dtype=np.uint8),
        np.full((37, 300, 3), 114, np.uint8),
    ]
    results = nano.predict_batch(images)
    assert len(results) == 2 and all(isinstance(r, Detections) for r in results)
    for dets, image in zip(results, images):
        h, w = image.shape[:2]
        assert len(dets) <= 100
        assert np.all(dets.scores >= 0.05) and np.all(dets.scores <= 1)
        assert np.all(dets.xyxy[:, [0, 2]] <= w) and np.all(dets.xyxy[:, [1, 3]] <= h)
        assert np.all(dets.xyxy >= 0)
    assert nano.predict_batch([]) == []


@pytest.mark.slow
def test_real_model_finds_a_cow_pasted_from_a_real_photo_at_any_offset(nano):
    """The same photo alone and padded into a wider canvas gives the same box, shifted."""
    photo = _cow_photo()
    canvas = np.full((photo.shape[0], photo.shape[1] + 400, 3), 255, np.uint8)
    canvas[:, 400:] = photo
    alone, shifted = (d.filter(0.5, ["cow"]) for d in nano.predict_batch([photo, canvas]))
    assert len(alone) >= 1 and len(shifted) >= 1
    moved = alone.xyxy[:1] + np.array([400, 0, 400, 0])
    assert box_iou(moved, shifted.xyxy[:1])[0, 0] > 0.8


def _cow_photo() -> np.ndarray:
    """The real cow photo as RGB (conftest.cow_photo_path skips when it is absent)."""
    path = cow_photo_path()
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"{path} is not a readable image"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.slow
def test_real_model_finds_the_cow_in_a_real_photo(nano):
    """The acceptance check: a real photo of a cow gives a `cow` box with score >= 0.5."""
    photo = _cow_photo()
    dets = nano.predict(photo)
    cows = dets.filter(0.5, ["cow"])
    assert len(cows) >= 1, dets.to_records()[:5]
    best = cows.sorted_by_score()[0]
    assert best.scores[0] >= 0.5
    # The cow stands in the middle of the 1140x760 frame, filling about half its width.
    x1, y1, x2, y2 = best.xyxy[0]
    assert 200 < x1 < 400 and 750 < x2 < 950 and 100 < y1 < 300 and 550 < y2 < 750


@pytest.mark.slow
def test_real_model_copied_without_its_classes_file_uses_coco_names(yolox_nano_path, tmp_path):
    copy = tmp_path / "renamed.onnx"
    shutil.copyfile(yolox_nano_path, copy)
    detector = YoloxOnnxDetector(copy, device="cuda", min_score=0.3)
    assert detector.name == "renamed" and detector.classes == COCO_CLASSES
    assert detector.device in ("cpu", "cuda:0")  # CPU fallback where onnxruntime lacks CUDA
    (dets,) = detector.predict_batch([np.full((64, 64, 3), 114, np.uint8)])
    assert np.all(dets.scores >= 0.3)
