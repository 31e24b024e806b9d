"""Auto-tuning the tracker on cached detections (cowdemo.tracking.tune, `cowdemo track --tune`):
Optuna TPE with the settings in use as trial 1, tuned on the first part of the video and
compared with the settings in use on the held-out rest; with ground truth (HOTA) and without
(the proxy, labelled as one).

Library tests use `SyntheticGroundTruthDetector` boxes (jittered, the hidden cow missed: the
question is what the search does with known boxes); the CLI test runs YOLOX-Nano."""

from __future__ import annotations

import json

import pytest
from tracking_support import SyntheticGroundTruthDetector, ground_truth_of, synthetic_detections

from cowdemo.cli import main
from cowdemo.datasets.synthetic import make_video_frames, write_mot_gt, write_video
from cowdemo.errors import CowdemoError
from cowdemo.tracking import TrackerSettings
from cowdemo.tracking.tune import tune_tracker

BASE = TrackerSettings(classes=None, score_threshold=0.0)


@pytest.fixture(scope="module")
def sample():
    """The Track page's synthetic sample: 60 frames, 3 cows, two crossing half way."""
    video = make_video_frames(seed=0, n_frames=60)
    detector = SyntheticGroundTruthDetector(video, jitter=1.5, min_visible=0.7, seed=2)
    return synthetic_detections(video, detector), ground_truth_of(video)


def test_tune_with_ground_truth_is_no_worse_than_the_defaults_on_held_out_frames(sample):
    found, gt = sample
    seen = []
    result = tune_tracker(found, BASE, gt=gt, trials=12, progress=seen.append)
    assert [p.done for p in seen] == list(range(1, 13)) and seen[-1].total == 12
    assert "best so far" in seen[-1].text
    in_use = BASE.with_changes(initialization_delay=BASE.delay)  # the delay in force, spelt out
    assert result.trials[0].settings == in_use, "trial 1 is the settings in use"
    assert result.best_trial.value >= result.trials[0].value
    assert (result.tune_frames, result.held_out_frames) == (36, 24)
    best, defaults = result.held_out["best"]["HOTA"], result.held_out["defaults"]["HOTA"]
    print(f"held-out HOTA: best {best:.4f}, defaults {defaults:.4f}")
    assert best >= defaults
    assert "HOTA" in result.summary() and not result.is_proxy
    top = result.top(3)
    assert len(top) == 3 and top[0]["HOTA"] == round(result.best_trial.value, 4)
    # the same seed gives the same search
    again = tune_tracker(found, BASE, gt=gt, trials=12)
    assert [t.value for t in again.trials] == [t.value for t in result.trials]


def test_tune_without_ground_truth_uses_the_labelled_proxy(sample):
    found, _ = sample
    result = tune_tracker(found, BASE, trials=12)
    assert result.is_proxy and "proxy" in result.objective_name
    assert "proxy" in result.summary() and "proxy" in list(result.top(1)[0])[1]
    best = result.held_out["best"]["Suspected switches"]
    defaults = result.held_out["defaults"]["Suspected switches"]
    print(f"held-out suspected switches: best {best}, defaults {defaults}")
    assert best <= defaults
    assert "HOTA" not in result.held_out["best"]


def test_bytetrack_can_be_tuned_too(sample):
    found, gt = sample
    result = tune_tracker(found, BASE.with_changes(family="bytetrack"), gt=gt, trials=6,
                          families=("bytetrack",))  # fmt: skip
    assert {t.settings.family for t in result.trials} == {"bytetrack"}
    assert result.trials[0].settings == BASE.with_changes(family="bytetrack")
    both = tune_tracker(found, BASE, gt=gt, trials=10, families=("norfair", "bytetrack"))
    assert {t.settings.family for t in both.trials} == {"norfair", "bytetrack"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "hota"}, "needs ground truth"),
        ({"objective": "mota"}, "Unknown objective 'mota'"),
        ({"trials": 0}, "Trials must be a whole number from 1"),
        ({"split": 0.99}, "tuned share must be between"),
    ],
)
def test_bad_tune_requests_say_what_to_do(sample, kwargs, message):
    with pytest.raises(CowdemoError, match=message):
        tune_tracker(sample[0], BASE, **kwargs)


@pytest.mark.slow
def test_cli_tune_on_the_synthetic_sample(yolox_nano_path, tmp_path, capsys, monkeypatch):
    """`cowdemo track --tune` with YOLOX-Nano on the synthetic sample: with its ground truth
    the held-out HOTA of the best settings is at least the defaults' (both printed); without,
    the objective is called a proxy and held-out suspected switches do not rise."""
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    video = make_video_frames(seed=0, n_frames=60)
    path = write_video(tmp_path / "sample.mp4", video)
    gt = write_mot_gt(tmp_path / "gt.txt", video)
    common = ["--model", str(yolox_nano_path), "--no-video", "--device", "cpu", "--tune",
              "--trials", "15", "--score-threshold", "0.3"]  # fmt: skip
    assert main(["track", str(path), "--gt", str(gt), "--out", str(tmp_path / "a"), *common]) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "objective: hota" in printed and "held out (24 processed frames" in printed
    tuned = json.loads((tmp_path / "a" / "tune.json").read_text())
    assert len(tuned["trials"]) == 15 and not tuned["proxy"]
    best, defaults = (tuned["held_out"][k]["HOTA"] for k in ("best", "defaults"))
    assert best >= defaults
    hota_row = next(line for line in printed.splitlines() if line.strip().startswith("HOTA"))
    assert f"{best:.4f}" in hota_row and f"{defaults:.4f}" in hota_row
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["runs"][0]["tracker_settings"] == tuned["best"], "tracked with the best"

    assert main(["track", str(path), "--out", str(tmp_path / "b"), *common]) == 0
    printed = capsys.readouterr().out
    assert "objective: PROXY score (no ground truth)" in printed
    assert "cached detections" in printed or "same detections" in printed
    tuned = json.loads((tmp_path / "b" / "tune.json").read_text())
    assert tuned["proxy"] and tuned["held_out"]["best"]["Suspected switches"] <= (
        tuned["held_out"]["defaults"]["Suspected switches"])
    assert main(["track", str(path), "--out", str(tmp_path / "c"), *common,
                 "--objective", "idf1"]) == 2  # fmt: skip
    assert "needs ground truth" in capsys.readouterr().err
