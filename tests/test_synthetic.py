"""The synthetic cow generator: determinism, exact boxes, and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from cowdemo.datasets.synthetic import (
    CLASSES,
    SyntheticImage,
    SyntheticVideo,
    make_dataset,
    make_scene,
    make_video_frames,
    scene_seed,
    write_mot_gt,
    write_video,
)
from cowdemo.detections import Detections, box_iou
from cowdemo.errors import CowdemoError

SCENE_ARGS = [(0, 640, 480), (1, 320, 240), (5, 320, 240), (9, 160, 120), (11, 64, 48)]


@pytest.fixture(scope="module")
def scenes() -> list[SyntheticImage]:
    return [make_scene(seed, w, h, n_animals=(1, 6)) for seed, w, h in SCENE_ARGS]


@pytest.fixture(scope="module")
def video() -> SyntheticVideo:
    return make_video_frames(3, n_frames=40)


def cow_coloured(image: np.ndarray) -> np.ndarray:
    """Pixels a cow could have painted: every cow colour has red >= green, no background does."""
    pixels = image.astype(np.int16)
    return pixels[..., 0] >= pixels[..., 1]


# --- scenes ---------------------------------------------------------------------------------
def test_same_seed_same_scene_and_different_seed_differs() -> None:
    a, b, c = make_scene(4, 320, 240), make_scene(4, 320, 240), make_scene(5, 320, 240)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.boxes, b.boxes)
    assert np.array_equal(a.track_ids, b.track_ids)
    assert not np.array_equal(a.image, c.image)


def test_scene_shapes_and_counts(scenes: list[SyntheticImage]) -> None:
    for scene, (_, width, height) in zip(scenes, SCENE_ARGS):
        n = len(scene.boxes)
        assert scene.image.shape == (height, width, 3) and scene.image.dtype == np.uint8
        assert 1 <= n <= 6
        assert scene.boxes.shape == (n, 4)
        assert scene.class_names == ["cow"] * n
        assert scene.track_ids.tolist() == list(range(1, n + 1))
        assert scene.masks.shape == scene.visible_masks.shape == (n, height, width)
    assert make_scene(2, 320, 240, n_animals=5).boxes.shape == (5, 4)
    empty = make_scene(2, 320, 240, n_animals=0)
    assert empty.boxes.shape == (0, 4) and len(empty.detections()) == 0


def test_boxes_inside_image_and_not_degenerate(scenes: list[SyntheticImage]) -> None:
    for scene in scenes:
        height, width = scene.image.shape[:2]
        x1, y1, x2, y2 = scene.boxes.T
        assert (x1 >= 0).all() and (y1 >= 0).all()
        assert (x2 <= width).all() and (y2 <= height).all()
        assert (x2 - x1 >= 4).all() and (y2 - y1 >= 3).all()
        assert np.array_equal(scene.boxes, np.round(scene.boxes))  # pixel edges


def test_box_is_exact_extent_of_full_silhouette(scenes: list[SyntheticImage]) -> None:
    for scene in scenes:
        for box, mask, visible in zip(scene.boxes, scene.masks, scene.visible_masks):
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
            assert not (visible & ~mask).any()  # visible part lies inside the silhouette
            assert visible.any()  # nobody is hidden completely


def test_masks_match_painted_pixels(scenes: list[SyntheticImage]) -> None:
    """What is drawn is what is annotated: cow colours exactly where a visible mask says."""
    for scene in scenes:
        seen = scene.visible_masks.any(axis=0)
        assert np.array_equal(cow_coloured(scene.image), seen)
        assert np.array_equal(seen, scene.masks.any(axis=0))  # the union hides nothing


def test_unoccluded_boxes_are_tight_on_the_image(scenes: list[SyntheticImage]) -> None:
    """For an animal clear of every other box, the cow-coloured pixels near it span its box."""
    checked = 0
    for scene in scenes:
        height, width = scene.image.shape[:2]
        cow = cow_coloured(scene.image)
        iou = box_iou(scene.boxes, scene.boxes)
        np.fill_diagonal(iou, 0)
        for i, box in enumerate(scene.boxes.astype(int)):
            if iou[i].any():
                continue
            x1, y1, x2, y2 = box
            # Every edge row and column of the box touches the animal...
            assert cow[y1, x1:x2].any() and cow[y2 - 1, x1:x2].any()
            assert cow[y1:y2, x1].any() and cow[y1:y2, x2 - 1].any()
            # ...and nothing cow-coloured lies just outside it (unless another animal is there).
            window = (slice(max(y1 - 3, 0), y2 + 3), slice(max(x1 - 3, 0), x2 + 3))
            others = scene.masks[np.arange(len(scene.masks)) != i].any(axis=0)
            outside = cow[window] & ~others[window]
            inside = np.zeros((height, width), bool)
            inside[y1:y2, x1:x2] = True
            assert not (outside & ~inside[window]).any()
            checked += 1
    assert checked >= 5


def test_scenes_have_partial_occlusions() -> None:
    fractions = np.concatenate(
        [make_scene(seed, 320, 240, n_animals=(3, 5)).visible_fraction for seed in range(12)]
    )
    assert (fractions < 0.98).any(), "no animal is partly hidden in a dozen crowded scenes"
    assert (fractions > 0).all()


def test_scene_sizes_vary(scenes: list[SyntheticImage]) -> None:
    widths = np.concatenate([s.boxes[:, 2] - s.boxes[:, 0] for s in scenes[:3]])
    assert widths.max() > 1.5 * widths.min()


def test_detections_view(scenes: list[SyntheticImage]) -> None:
    scene = scenes[0]
    dets = scene.detections()
    assert isinstance(dets, Detections)
    assert np.array_equal(dets.xyxy, scene.boxes)
    assert (dets.scores == 1.0).all()
    assert dets.class_names.tolist() == ["cow"] * len(scene.boxes)
    assert dets.class_ids.tolist() == [CLASSES.index("cow")] * len(scene.boxes)
    assert np.array_equal(dets.track_ids, scene.track_ids)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 31},
        {"height": 10},
        {"width": 320.5},
        {"n_animals": -1},
        {"n_animals": (3, 1)},
        {"n_animals": (1, 2, 3)},
        {"n_animals": 999},
        {"seed": -1},
        {"seed": "x"},
    ],
)
def test_bad_scene_arguments_raise_one_line_errors(kwargs: dict) -> None:
    args = {"seed": 0, **kwargs}
    with pytest.raises(CowdemoError) as info:
        make_scene(**args)
    assert "\n" not in str(info.value) and str(info.value)


# --- COCO dataset ---------------------------------------------------------------------------
def test_make_dataset_writes_coco_that_pycocotools_reads(tmp_path: Path) -> None:
    json_path = make_dataset(tmp_path / "ds", n_images=3, seed=2, width=160, height=120)
    assert json_path == tmp_path / "ds" / "annotations.json"
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["annotations.json", "images"]
    assert len(list((tmp_path / "ds" / "images").glob("*.png"))) == 3

    coco = COCO(str(json_path))
    assert coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": "cow", "supercategory": "animal"}]
    assert sorted(coco.getImgIds()) == [1, 2, 3]
    for index, image_id in enumerate(sorted(coco.getImgIds())):
        info = coco.loadImgs(image_id)[0]
        assert (info["width"], info["height"]) == (160, 120)
        scene = make_scene(scene_seed(2, index), 160, 120)
        pixels = np.asarray(Image.open(json_path.parent / info["file_name"]).convert("RGB"))
        assert np.array_equal(pixels, scene.image)  # PNG is lossless, channels are RGB
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        xywh = np.asarray([a["bbox"] for a in anns]).reshape(-1, 4)
        assert np.array_equal(xywh, scene.detections().xywh)
        for ann in anns:
            assert ann["category_id"] == 1 and ann["iscrowd"] == 0
            assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3])
    ids = coco.getAnnIds()
    assert sorted(ids) == list(range(1, len(ids) + 1))


def test_make_dataset_is_deterministic_and_rewrites_in_place(tmp_path: Path) -> None:
    first = make_dataset(tmp_path / "a", n_images=2, seed=7, width=96, height=64)
    second = make_dataset(tmp_path / "b", n_images=2, seed=7, width=96, height=64)
    assert json.loads(first.read_text()) == json.loads(second.read_text())
    again = make_dataset(tmp_path / "a", n_images=2, seed=7, width=96, height=64)
    assert json.loads(again.read_text()) == json.loads(second.read_text())
    leftovers = [p.name for p in (tmp_path / "a").rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # temporary files were renamed, none left behind


def test_make_dataset_validates(tmp_path: Path) -> None:
    with pytest.raises(CowdemoError, match="n_images"):
        make_dataset(tmp_path / "x", n_images=0)
    with pytest.raises(CowdemoError, match="width"):
        make_dataset(tmp_path / "x", width=8)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CowdemoError, match="folder"):
        make_dataset(blocker, n_images=1)


# --- videos ---------------------------------------------------------------------------------
def test_video_is_deterministic(video: SyntheticVideo) -> None:
    again = make_video_frames(3, n_frames=40)
    assert again.tracks == video.tracks
    assert all(np.array_equal(a, b) for a, b in zip(again.frames, video.frames))


def test_video_ground_truth_is_consistent(video: SyntheticVideo) -> None:
    assert len(video) == len(video.tracks) == len(video.visibility) == 40
    assert video.size == (320, 240)
    assert video.track_ids == [1, 2, 3]
    for frame, rows, shares in zip(video.frames, video.tracks, video.visibility):
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
        assert [tid for tid, _ in rows] == [1, 2, 3]  # everyone stays in view
        boxes = np.asarray([box for _, box in rows])
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 320).all()
        assert (boxes[:, 3] <= 240).all() and (boxes[:, 2:] > boxes[:, :2]).all()
        assert all(0 < s <= 1 for s in shares)
        # Cow colours appear inside the union of boxes only.
        inside = np.zeros((240, 320), bool)
        for x1, y1, x2, y2 in boxes.astype(int):
            inside[y1:y2, x1:x2] = True
        assert not (cow_coloured(frame) & ~inside).any()
    dets = video.detections(0)
    assert dets.track_ids.tolist() == [1, 2, 3] and len(dets) == 3


def test_animals_cross_each_other(video: SyntheticVideo) -> None:
    assert video.crossing_pair == (1, 2)
    centres = [{tid: (box[0] + box[2]) / 2 for tid, box in rows} for rows in video.tracks]
    # They really pass: the left-to-right order of the pair flips during the clip...
    assert np.sign(centres[0][1] - centres[0][2]) == -np.sign(centres[-1][1] - centres[-1][2])
    # ...and on the way their boxes overlap, with one partly hiding the other.
    overlaps = []
    for rows in video.tracks:
        boxes = dict(rows)
        overlaps.append(box_iou(np.asarray([boxes[1]]), np.asarray([boxes[2]]))[0, 0])
    k = int(np.argmax(overlaps))
    assert overlaps[k] > 0.3
    assert min(video.visibility[k][:2]) < 0.9


def test_video_without_crossing_and_bad_arguments() -> None:
    calm = make_video_frames(1, n_frames=5, width=160, height=120, n_animals=2, crossing=False)
    assert calm.crossing_pair is None and len(calm) == 5
    with pytest.raises(CowdemoError, match="crossing"):
        make_video_frames(1, n_animals=1)
    with pytest.raises(CowdemoError, match="n_frames"):
        make_video_frames(1, n_frames=0)
    with pytest.raises(CowdemoError, match="height"):
        make_video_frames(1, height=16)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_write_video_reads_back_with_opencv(
    tmp_path: Path, video: SyntheticVideo, suffix: str
) -> None:
    path = write_video(tmp_path / f"clip{suffix}", video, fps=12)
    assert path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.isOpened()
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12, abs=0.01)
        frames = []
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    assert len(frames) == len(video)
    for original, decoded in zip(video.frames[::10], frames[::10]):
        assert decoded.shape == original.shape
        difference = np.abs(decoded.astype(float) - original.astype(float)).mean(axis=(0, 1))
        assert (difference < 12).all(), difference  # lossy, but the same picture in RGB order


def test_write_video_rejects_unknown_container(tmp_path: Path, video: SyntheticVideo) -> None:
    with pytest.raises(CowdemoError, match=r"\.mp4"):
        write_video(tmp_path / "clip.mkv", video)
    assert list(tmp_path.iterdir()) == []


def test_mot_ground_truth_round_trip(tmp_path: Path, video: SyntheticVideo) -> None:
    path = write_mot_gt(tmp_path / "gt" / "gt.txt", video)
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape == (3 * len(video), 10)
    assert (rows[:, 6] == 1).all() and (rows[:, 7:] == -1).all()
    assert rows[:, 0].min() == 1 and rows[:, 0].max() == len(video)  # 1-based frames
    assert set(rows[:, 1].astype(int)) == {1, 2, 3}  # 1-based ids
    for frame, tid, left, top, width, height in rows[:, :6]:
        boxes = dict(video.tracks[int(frame) - 1])
        assert boxes[int(tid)] == (left, top, left + width, top + height)
