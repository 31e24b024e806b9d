"""Tracking metrics: MOT text IO, CLEAR MOT / Identity / HOTA against references, switch finders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.tracking import (
    HOTA_ALPHAS,
    MOTCHALLENGE_METRICS,
    MotSequence,
    SuspectedSwitch,
    SwitchEvent,
    combine_results,
    evaluate_many,
    evaluate_tracking,
    id_switch_events,
    read_mot,
    suspected_switches,
    track_summary,
    write_mot,
)
from tests.conftest import shared_path

TUD = ("TUD-Campus", "TUD-Stadtmitte")
COUNTS = {
    "num_unique_objects",
    "mostly_tracked",
    "partially_tracked",
    "mostly_lost",
    "num_false_positives",
    "num_misses",
    "num_switches",
    "num_fragmentations",
}


def sequence(rows: list[tuple[float, ...]]) -> MotSequence:
    """(frame, id, left, top, width, height) rows."""
    table = np.asarray(rows, dtype=float).reshape(-1, 6)
    return MotSequence(table[:, 0], table[:, 1], table[:, 2:6])


# --- the published TUD references -----------------------------------------------------------
@pytest.fixture(scope="module")
def tud_results():
    expected_path = shared_path("reference/mot/tud/expected.json")
    expected = json.loads(expected_path.read_text())
    root = expected_path.parent
    pairs = {
        name: (read_mot(root / name / "gt.txt"), read_mot(root / name / "test.txt")) for name in TUD
    }
    return expected, evaluate_many(pairs, iou_threshold=0.5)


@pytest.mark.parametrize("name", [*TUD, "OVERALL"])
def test_clear_and_identity_match_py_motmetrics_reference(tud_results, name):
    expected, results = tud_results
    got = results[name].to_dict()
    assert tuple(expected["metric_order"]) == MOTCHALLENGE_METRICS
    for metric, value in zip(expected["metric_order"], expected[name], strict=True):
        if metric in COUNTS:
            assert got[metric] == int(value), metric
        else:  # the reference is rounded to 6 decimals
            assert got[metric] == pytest.approx(value, abs=1e-6), metric


@pytest.mark.parametrize("name", TUD)
def test_hota_matches_trackeval_reference(tud_results, name):
    expected, results = tud_results
    # TrackEval's values as published (4 decimals). TrackEval's HOTA code run on these very files
    # agrees with ours to 1e-15; the published TUD-Stadtmitte AssA (0.4085) is 3.4e-4 below what
    # that code gives (0.40884), so the published numbers are held to 1e-3.
    reference = expected["hota_trackeval"][name]
    result = results[name]
    assert result.hota == pytest.approx(reference["HOTA"], abs=1e-3)
    assert result.det_a == pytest.approx(reference["DetA"], abs=1e-3)
    assert result.ass_a == pytest.approx(reference["AssA"], abs=1e-3)
    assert result.loc_a == pytest.approx(reference["LocA"], abs=1e-3)
    assert len(result.hota_detail.alphas) == 19


def test_tud_switch_events_are_listed_for_the_timeline(tud_results):
    _, results = tud_results
    events = results["TUD-Campus"].switch_events
    assert len(events) == results["TUD-Campus"].num_switches == 7
    assert events == sorted(events, key=lambda e: e.frame)
    assert all(e.old_pred_id != e.new_pred_id for e in events)
    per_frame = results["TUD-Campus"].per_frame
    assert per_frame.num_switches.sum() == 7
    assert per_frame.num_false_positives.sum() == 13
    assert per_frame.num_misses.sum() == 150


# --- py-motmetrics itself on synthetic sequences ---------------------------------------------
def synthetic_pair(seed: int, frames: int = 120, objects: int = 12):
    """Moving boxes with misses, jitter, id changes, clutter and exact duplicate boxes (ties)."""
    rng = np.random.default_rng(seed)
    gt_rows, pred_rows = [], []
    for obj in range(objects):
        start = int(rng.integers(1, frames // 2))
        end = int(rng.integers(start + 5, frames + 1))
        x, y = rng.uniform(0, 300, 2)
        w, h = rng.uniform(20, 80, 2)
        vx, vy = rng.normal(0, 3, 2)
        track = 100 + obj
        for frame in range(start, end + 1):
            x, y = x + vx, y + vy
            gt_rows.append((frame, obj + 1, x, y, w, h))
            if rng.random() < 0.15:
                continue  # missed
            if rng.random() < 0.03:
                track = int(rng.integers(100, 100 + objects + 5))  # id change, maybe a swap
            jx, jy, jw, jh = rng.normal(0, 5, 4)
            box = (x + jx, y + jy, max(2.0, w + jw), max(2.0, h + jh))
            pred_rows.append((frame, track, *box))
            if rng.random() < 0.03:
                pred_rows.append((frame, 900 + obj, *box))  # an identical second box
    for _ in range(frames // 3):
        frame = int(rng.integers(1, frames + 1))
        pred_rows.append((frame, int(rng.integers(500, 520)), *rng.uniform(0, 300, 2), 40, 40))
    # Keep the first box of any (frame, id) the random ids made twice.
    pred = np.asarray(pred_rows, dtype=float)
    _, first = np.unique(pred[:, 0] * 10_000 + pred[:, 1], return_index=True)
    return sequence(gt_rows), sequence(pred[np.sort(first)].tolist())


def grid_pair(seed: int, frames: int = 40):
    """6 x 6 boxes on a 2-pixel grid: many exact ties, and IoU of exactly 0.5 (the threshold)."""
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for frame in range(1, frames + 1):
        for ids, rows, keep in ((range(6), gt, 0.8), (range(50, 58), pred, 0.7)):
            for track in ids:
                if rng.random() < keep:
                    x, y = rng.integers(0, 4) * 2, rng.integers(0, 3) * 2
                    rows.append((frame, track, x, y, 6, 6))
    return sequence(gt), sequence(pred)


def motmetrics_accumulator(mm, gt: MotSequence, pred: MotSequence):
    acc = mm.MOTAccumulator()
    for frame in np.union1d(gt.frames, pred.frames):
        g, p = gt.frames == frame, pred.frames == frame
        dists = mm.distances.iou_matrix(gt.tlwh[g], pred.tlwh[p], max_iou=0.5)
        acc.update(gt.ids[g], pred.ids[p], dists, frameid=int(frame))
    return acc


def test_cross_check_against_py_motmetrics_on_synthetic_sequences():
    mm = pytest.importorskip("motmetrics")
    pairs = {"seq0": synthetic_pair(0), "seq1": synthetic_pair(1), "grid": grid_pair(2)}
    accs = [motmetrics_accumulator(mm, gt, pred) for gt, pred in pairs.values()]
    metrics = [*MOTCHALLENGE_METRICS, "num_matches", "num_objects", "num_predictions", "idtp"]
    summary = mm.metrics.create().compute_many(
        accs, metrics=metrics, names=list(pairs), generate_overall=True
    )
    ours = evaluate_many(pairs)
    assert sum(r.num_switches for r in ours.values()) > 0  # the case exercises switches
    for name in [*pairs, "OVERALL"]:
        got = ours[name].to_dict()
        for metric in metrics:
            reference = summary.loc[name, metric]
            if metric in COUNTS or metric.startswith("num_") or metric == "idtp":
                assert got[metric] == int(reference), (name, metric)
            else:
                assert got[metric] == pytest.approx(float(reference), abs=1e-9), (name, metric)

    # The same switch events, frame by frame.
    for (gt, pred), acc in zip(pairs.values(), accs, strict=True):
        events = acc.mot_events
        switches = events[events.Type == "SWITCH"]
        theirs = [
            (int(frame), int(row.OId), int(row.HId))
            for (frame, _), row in zip(switches.index, switches.itertuples(), strict=True)
        ]
        mine = [(e.frame, e.gt_id, e.new_pred_id) for e in id_switch_events(gt, pred)]
        assert mine == theirs


# --- hand-built cases -------------------------------------------------------------------------
def test_two_objects_swapping_ids_count_two_switches():
    # Objects 1 (left) and 2 (right), frames 1..5. The tracker calls them 10 and 20 in frames 1-2,
    # then 20 and 10 from frame 3 on. In frame 3 neither last match is still valid (hypothesis 10
    # now sits on object 2, IoU 0 with object 1), so the Hungarian step pairs 1-20 and 2-10: both
    # objects change hypothesis, 2 switches. Frames 4-5 keep those pairs: no more switches.
    # MOTA = 1 - 2 / 10. IDF1: the best one-to-one id map is 1-20, 2-10 (3 frames each), IDTP 6,
    # IDF1 = 2 * 6 / (10 + 10) = 0.6.
    left, right = (0, 0, 10, 10), (100, 0, 10, 10)
    gt = sequence([(f, 1, *left) for f in range(1, 6)] + [(f, 2, *right) for f in range(1, 6)])
    pred = sequence(
        [(f, 10 if f < 3 else 20, *left) for f in range(1, 6)]
        + [(f, 20 if f < 3 else 10, *right) for f in range(1, 6)]
    )
    result = evaluate_tracking(gt, pred)
    assert result.num_switches == 2
    assert result.switch_events == [SwitchEvent(3, 1, 10, 20), SwitchEvent(3, 2, 20, 10)]
    assert id_switch_events(gt, pred) == result.switch_events
    assert result.mota == pytest.approx(0.8)
    assert result.idf1 == pytest.approx(0.6)
    assert result.num_fragmentations == 0
    assert result.num_false_positives == result.num_misses == 0
    assert result.motp == 0.0


def test_perfect_tracker_scores_one_everywhere():
    gt, _ = synthetic_pair(3)
    pred = MotSequence(gt.frames, gt.ids + 1000, gt.tlwh)  # other ids, same boxes
    result = evaluate_tracking(gt, pred)
    assert result.mota == 1.0
    assert result.idf1 == 1.0
    assert result.hota == pytest.approx(1.0)
    assert result.det_a == pytest.approx(1.0)
    assert result.ass_a == pytest.approx(1.0)
    assert result.loc_a == pytest.approx(1.0)
    assert result.num_switches == result.num_fragmentations == 0
    assert result.mostly_tracked == result.num_unique_objects


def test_fragmentation_counts_tracked_to_missed_inside_the_tracked_span():
    box = (0, 0, 10, 10)
    gt = sequence([(f, 1, *box) for f in range(1, 9)])
    # Tracked in 2, 3, 5, 7; missed in 1, 4, 6, 8: the misses in 4 and 6 break the track twice;
    # 1 and 8 lie outside the tracked span.
    pred = sequence([(f, 7, *box) for f in (2, 3, 5, 7)])
    result = evaluate_tracking(gt, pred)
    assert result.num_fragmentations == 2
    assert result.partially_tracked == 1


def test_empty_tracker_output_and_empty_ground_truth():
    gt, _ = synthetic_pair(4)
    nothing = evaluate_tracking(gt, MotSequence.empty())
    assert nothing.num_misses == len(gt)
    assert nothing.mota == 0.0
    assert nothing.hota == 0.0
    assert nothing.mostly_lost == nothing.num_unique_objects
    only_fp = evaluate_tracking(MotSequence.empty(), gt)
    assert only_fp.num_false_positives == len(gt)
    assert np.isnan(only_fp.mota)


def test_combine_results_of_one_sequence_is_that_sequence():
    gt, pred = synthetic_pair(5)
    single = evaluate_tracking(gt, pred)
    combined = combine_results([single])
    for key, value in single.to_dict().items():
        if key != "name":
            assert combined.to_dict()[key] == pytest.approx(value, abs=1e-12), key
    assert np.allclose(combined.hota_detail.hota, single.hota_detail.hota)
    assert np.array_equal(single.hota_detail.alphas, HOTA_ALPHAS)


def test_stricter_iou_threshold_matches_fewer_boxes():
    gt, pred = synthetic_pair(6)
    loose = evaluate_tracking(gt, pred, iou_threshold=0.3)
    strict = evaluate_tracking(gt, pred, iou_threshold=0.7)
    assert strict.num_detections < loose.num_detections
    assert strict.hota == loose.hota  # HOTA sweeps its own thresholds
    with pytest.raises(CowdemoError, match="IoU threshold"):
        evaluate_tracking(gt, pred, iou_threshold=0)


# --- MOTChallenge text ------------------------------------------------------------------------
def test_read_mot_accepts_6_to_10_columns_and_whitespace():
    text = "# a comment\n1,1,10,20,30,40\n\n1, 2, 50, 60, 70, 80, 0.9\n2 1 11 21 30 40 1 -1 -1 -1\n"
    seq = read_mot(text)
    assert len(seq) == 3
    assert seq.frames.tolist() == [1, 1, 2]
    assert seq.ids.tolist() == [1, 2, 1]
    assert seq.confidences.tolist() == [1.0, 0.9, 1.0]
    assert seq.xyxy[0].tolist() == [10, 20, 40, 60]
    assert read_mot(text.encode()).frames.tolist() == [1, 1, 2]
    assert len(read_mot(text, min_confidence=1)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,1,10,20,30,40,1\n1,2,10,20\n", "line 2: expected 6 to 10 values"),
        ("1,1,10,20,30,40\n\n2,1,ten,20,30,40\n", "line 3"),
        ("0,1,10,20,30,40\n", "line 1 has a frame number"),
        ("1.5,1,10,20,30,40\n", "line 1 has a frame number"),
        ("1,1.5,10,20,30,40\n", "line 1 has a track id"),
        ("1,1,10,20,-3,40\n", "line 1 has a negative width"),
        ("1,1,10,20,nan,40\n", "line 1 holds NaN"),
        ("1,1,10,20,30,40\n1,1,11,20,30,40\n", "line 2 repeats track id 1 in frame 1"),
        ("1,1,10,20,30,40,1,1,1,1,1\n", "found 11"),
    ],
)
def test_malformed_mot_text_names_the_line(text, message):
    with pytest.raises(CowdemoError, match=message):
        read_mot(text)


def test_missing_mot_file_is_a_user_error(tmp_path):
    with pytest.raises(CowdemoError, match="does not exist"):
        read_mot(tmp_path / "nope.txt")


def test_write_then_read_round_trips_atomically(tmp_path):
    _, pred = synthetic_pair(7)
    path = write_mot(tmp_path / "out" / "test.txt", pred)
    assert [p.name for p in path.parent.iterdir()] == ["test.txt"]  # no temporary file left
    back = read_mot(path)
    order = np.lexsort((pred.ids, pred.frames))
    assert np.array_equal(back.frames, pred.frames[order])
    assert np.array_equal(back.ids, pred.ids[order])
    assert np.allclose(back.tlwh, pred.tlwh[order], rtol=1e-9)
    assert evaluate_tracking(back, pred).mota == 1.0
    write_mot(path, MotSequence.empty())
    assert path.read_text() == ""


def test_duplicate_ids_in_a_frame_are_refused():
    with pytest.raises(CowdemoError, match="two boxes in frame 3"):
        sequence([(3, 5, 0, 0, 1, 1), (3, 5, 2, 2, 1, 1)])


# --- without ground truth ---------------------------------------------------------------------
def test_suspected_switches_find_a_track_restarting_nearby():
    rows = [(f, 1, 90 + f, 95, 10, 10) for f in range(1, 6)]  # ends in frame 5, centre (100, 100)
    rows += [(f, 2, 100, 95, 10, 10) for f in range(7, 12)]  # starts in 7, centre (105, 100)
    rows += [(f, 3, 500, 500, 10, 10) for f in range(1, 11)]  # ends in 10 at (505, 505)
    rows += [(f, 4, 700, 700, 10, 10) for f in range(11, 15)]  # starts in 11, but 276 px away
    rows += [(f, 5, 100, 95, 10, 10) for f in range(20, 25)]  # too late after track 2
    found = suspected_switches(sequence(rows), max_gap_frames=5, max_distance=50)
    assert found == [SuspectedSwitch(frame=7, ended_id=1, started_id=2, distance=5.0)]
    assert suspected_switches(sequence(rows), max_gap_frames=1) == []
    assert suspected_switches(MotSequence.empty()) == []


def test_track_summary_counts_tracks_lifetimes_and_boxes_per_frame():
    rows = [(f, 1, 0, 0, 5, 5) for f in (1, 2, 4)] + [(f, 7, 9, 9, 5, 5) for f in (2, 3)]
    summary = track_summary(sequence(rows))
    assert summary.num_tracks == 2
    assert summary.track_ids.tolist() == [1, 7]
    assert summary.lengths.tolist() == [3, 2]
    assert summary.spans.tolist() == [4, 2]
    assert summary.frames.tolist() == [1, 2, 3, 4]
    assert summary.counts.tolist() == [1, 2, 1, 1]
