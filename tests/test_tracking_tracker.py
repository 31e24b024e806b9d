"""Norfair through cowdemo.tracking: settings, distances by name, re-identification, and the
id switches the pipeline reports on a synthetic video with a crossing, checked against a count
derived from the generator's ground truth.

These are tracker-level tests: boxes come from `SyntheticGroundTruthDetector` (the generator's
true boxes, see tests/tracking_support.py). Real models are exercised in
test_tracking_pipeline.py."""

from __future__ import annotations

import numpy as np
import pytest
from tracking_support import (
    SyntheticGroundTruthDetector,
    ground_truth_of,
    synthetic_detections,
    write_lossless,
)

from cowdemo.datasets.synthetic import make_video_frames, write_mot_gt
from cowdemo.detections import box_iou
from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import read_mot
from cowdemo.tracking import (
    DISTANCES,
    DetectionCache,
    TrackerSettings,
    VideoSettings,
    run_tracking,
    track,
)

ALL_CLASSES = {"classes": None, "score_threshold": 0.0}


@pytest.fixture(scope="module")
def crossing():
    """60 frames, 3 cows; cows 1 and 2 walk past each other half way (2 hides part of 1)."""
    return make_video_frames(seed=0, n_frames=60)


# --- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"distance": "manhattan-ish"}, "Unknown distance 'manhattan-ish': choose one of"),
        ({"distance_threshold": -3}, "Distance threshold must be at least 0"),
        ({"distance_threshold": 0}, "Distance threshold must be above 0"),
        ({"distance": "iou", "distance_threshold": 1.5}, "between 0 and 1"),
        ({"hit_counter_max": 0}, "Hit counter maximum must be from 1"),
        ({"initialization_delay": 15}, "Initialization delay must be from 0 to 14"),
        ({"reid": True, "initialization_delay": 0}, "Re-identification needs an initial"),
        ({"score_threshold": 2.0}, "Score threshold must be between 0 and 1"),
    ],
)
def test_bad_tracker_settings_say_what_to_do(changes, message):
    with pytest.raises(CowdemoError, match=message):
        TrackerSettings(**changes)


def test_defaults_are_the_notebooks():
    settings = TrackerSettings()
    assert (settings.distance, settings.distance_threshold) == ("euclidean", 20.0)
    assert settings.spec.points == "centroid" and settings.spec.unit == "pixels"
    assert (settings.hit_counter_max, settings.delay, settings.reid) == (15, 7, False)
    with pytest.raises(CowdemoError, match="stride"):
        VideoSettings(stride=0)


# --- tracking ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(DISTANCES))
def test_every_distance_follows_three_clean_cows(crossing, name):
    """Exact boxes, nobody hidden: each distance, at its default threshold, keeps 3 ids."""
    found = synthetic_detections(crossing)
    spec = DISTANCES[name]
    tracks = track(found, TrackerSettings(distance=name, distance_threshold=spec.default_threshold,
                                          **ALL_CLASSES))  # fmt: skip
    assert tracks.num_tracks == 3
    # backfill (the default): the boxes seen while a track was being confirmed get its id,
    # so every box of every frame carries one
    assert [len(d) for d in tracks.detections] == [3] * 60
    # without it, Norfair confirms a track once its hit counter (+1 a frame) passes the delay
    # (7): only from frame 8 on
    plain = track(found, TrackerSettings(distance=name, backfill=False, **ALL_CLASSES))
    assert [len(d) for d in plain.detections] == [0] * 7 + [3] * 53


def test_output_boxes_are_the_detected_boxes_with_ids(crossing):
    found = synthetic_detections(crossing)
    tracks = track(found, TrackerSettings(**ALL_CLASSES))
    for raw, tracked in zip(found.detections, tracks.detections):
        assert tracked.track_ids is not None and len(set(tracked.track_ids)) == len(tracked)
        for box in tracked.xyxy:
            assert (raw.xyxy == box).all(axis=1).any()
    mot = tracks.to_mot()
    assert set(mot.ids) == {1, 2, 3}
    assert mot.frames.min() == 1  # backfilled from the first frame


def test_score_threshold_and_class_filter_decide_what_is_tracked(crossing):
    found = synthetic_detections(crossing)
    assert track(found, TrackerSettings(classes=("dog",))).num_tracks == 0
    assert track(found, TrackerSettings(classes=("cow",), score_threshold=1.0)).num_tracks == 3


def test_reidentification_gives_a_lost_cow_its_id_back(crossing):
    """Cow 3 (grazing alone) is hidden for 22 frames, longer than the hit counter keeps its
    track: without re-id it comes back as track 4, with re-id (coat colours) as track 3."""
    found = synthetic_detections(crossing, hidden={3: range(20, 42)})
    plain = track(found, TrackerSettings(**ALL_CLASSES))
    assert list(plain.track_ids) == [1, 2, 3, 4]
    reid = track(found, TrackerSettings(reid=True, **ALL_CLASSES))
    assert list(reid.track_ids) == [1, 2, 3]


def test_backfill_covers_a_one_cow_clip_in_every_frame_with_one_id():
    """One cow, found in every frame: without backfill Norfair leaves its first `delay` frames
    untracked (MOTA below 1); with it, every frame has the cow, with one id (MOTA 1)."""
    from cowdemo.tracking import tracking_report

    one = make_video_frames(seed=4, n_frames=50, n_animals=1, crossing=False)
    found = synthetic_detections(one)
    assert all(len(d) == 1 for d in found.detections), "the detector fires in every frame"
    gt = ground_truth_of(one)
    filled = track(found, TrackerSettings(**ALL_CLASSES))
    assert [len(d) for d in filled.detections] == [1] * 50
    assert set(filled.to_mot().ids) == {1}
    plain = track(found, TrackerSettings(backfill=False, **ALL_CLASSES))
    assert sum(len(d) for d in plain.detections) == 50 - TrackerSettings().delay
    assert tracking_report(filled, gt).result.mota == 1.0
    assert tracking_report(plain, gt).result.mota < 1.0


def test_bytetrack_tracks_the_crossing_and_drops_nothing_it_links(crossing):
    found = synthetic_detections(crossing)
    tracks = track(found, TrackerSettings(family="bytetrack", **ALL_CLASSES))
    assert tracks.num_tracks >= 3
    for raw, tracked in zip(found.detections, tracks.detections):
        for box in tracked.xyxy:  # the detector's own boxes, not Kalman predictions
            assert (raw.xyxy == box).all(axis=1).any()
    # from the second frame on every cow carries an id (a new ByteTrack track is confirmed by
    # its second box, except in the first frame)
    assert [len(d) for d in tracks.detections][1:] == [3] * 59
    with pytest.raises(CowdemoError, match="Unknown tracker 'sort'"):
        TrackerSettings(family="sort")
    with pytest.raises(CowdemoError, match="ByteTrack matching threshold must be between"):
        TrackerSettings(family="bytetrack", bytetrack_match=2.0)


def test_norfair_and_bytetrack_side_by_side_equal_py_motmetrics(crossing):
    """Both families on the same cached detections (jittered, the hidden cow missed), in one
    stats table; each track set's CLEAR and identity metrics equal py-motmetrics'."""
    mm = pytest.importorskip("motmetrics")
    from cowdemo.tracking import tracking_report
    from cowdemo.ui.track import stats_table

    detector = SyntheticGroundTruthDetector(crossing, jitter=1.0, min_visible=0.7, seed=1)
    found = synthetic_detections(crossing, detector)
    gt = ground_truth_of(crossing)
    reports = [
        tracking_report(track(found, TrackerSettings(label=name, family=name, **ALL_CLASSES)), gt)
        for name in ("norfair", "bytetrack")
    ]
    table = stats_table(reports)
    assert list(table.columns) == ["metric", "norfair", "bytetrack", "meaning"]
    for report in reports:
        pred = report.tracks.to_mot()
        acc = mm.MOTAccumulator()
        for frame in np.union1d(gt.frames, pred.frames):
            g, p = gt.frames == frame, pred.frames == frame
            acc.update(gt.ids[g], pred.ids[p],
                       mm.distances.iou_matrix(gt.tlwh[g], pred.tlwh[p], max_iou=0.5),
                       frameid=int(frame))  # fmt: skip
        ref = mm.metrics.create().compute(
            acc, metrics=["mota", "idf1", "num_switches", "num_misses", "num_false_positives"]
        )
        r = report.result
        assert r.mota == pytest.approx(float(ref["mota"].iloc[0]), abs=1e-9)
        assert r.idf1 == pytest.approx(float(ref["idf1"].iloc[0]), abs=1e-9)
        assert (r.num_switches, r.num_misses, r.num_false_positives) == tuple(
            int(ref[k].iloc[0]) for k in ("num_switches", "num_misses", "num_false_positives"))
        shown = dict(zip(table["metric"], table[report.label]))
        assert shown["MOTA"] == f"{r.mota:.3f}" and shown["IDF1"] == f"{r.idf1:.3f}"
        print(f"{report.label}: MOTA {r.mota:.4f} IDF1 {r.idf1:.4f} HOTA {r.hota:.4f} "
              f"switches {r.num_switches}")


# --- id switches against the generator's ground truth ---------------------------------------------
def switches_from_ground_truth(detector: SyntheticGroundTruthDetector, tracks) -> int:
    """Count id switches straight from the generator: every tracked box is one the detector
    reported, so its true cow is known exactly; a switch is a cow's box carrying another track
    id than at the cow's previous tracked frame."""
    last: dict[int, int] = {}
    count = 0
    for frame, dets in zip(tracks.frame_numbers, tracks.detections):
        boxes, true_ids = detector.boxes(int(frame) - 1)
        for box, track_id in zip(dets.xyxy, dets.track_ids):
            (row,) = np.flatnonzero((boxes == box).all(axis=1))
            cow = int(true_ids[row])
            count += cow in last and last[cow] != track_id
            last[cow] = int(track_id)
    return count


CONFIGS = [  # (stride, distance threshold, hit counter max): a few ways to lose a hidden cow
    (1, 20.0, 15),
    (1, 20.0, 6),
    (1, 30.0, 4),
    (2, 30.0, 4),
    (1, 8.0, 6),
]


@pytest.fixture(scope="module")
def crossing_file(crossing, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crossing")
    return write_lossless(folder / "crossing.mkv", crossing), read_mot(
        write_mot_gt(folder / "gt.txt", crossing)
    )


def test_reported_id_switches_equal_the_ground_truth_count(crossing, crossing_file, tmp_path):
    """The whole pipeline (decode, detection pass, Norfair, MOT metrics) on a synthetic video
    with a crossing: the id switches it reports equal the count derived from the generator.

    The detector reports jittered true boxes and misses a cow that is less than 70% visible,
    so the hidden cow at the crossing is lost for a while, as with a real detector."""
    video, gt = crossing_file
    detector = SyntheticGroundTruthDetector(crossing, jitter=0.5, min_visible=0.7, seed=3)
    # At IoU 0.9 a tracked box can only match the cow it was detected on (checked below), so
    # the metric and the direct count must agree exactly.
    for frame in range(len(crossing)):
        boxes, ids = detector.boxes(frame)
        truth = np.asarray([b for _, b in crossing.tracks[frame]])
        iou = box_iou(boxes, truth)
        own = np.asarray([[t for t, _ in crossing.tracks[frame]].index(i) for i in ids])
        assert (iou[np.arange(len(ids)), own] >= 0.9).all()
        iou[np.arange(len(ids)), own] = 0
        assert (iou < 0.9).all()

    cache = DetectionCache(tmp_path / "cache")
    total = 0
    for stride, threshold, hits in CONFIGS:
        settings = TrackerSettings(distance_threshold=threshold, hit_counter_max=hits,
                                   **ALL_CLASSES)  # fmt: skip
        for iou_threshold in (0.9, 0.5):
            outcome = run_tracking(video, detector, VideoSettings(stride=stride, max_side=None),
                                   settings, gt=gt, iou_threshold=iou_threshold, cache=cache)
            expected = switches_from_ground_truth(detector, outcome.tracks)
            reported = outcome.report.metrics()["ID switches"]
            assert reported == expected, (stride, threshold, hits, iou_threshold)
            assert [e.frame for e in outcome.report.events()] == sorted(
                e.frame for e in outcome.report.events()
            )
        total += expected
    assert total >= 3, "the configurations must actually produce switches"
