"""COCO box mAP: cowdemo's numpy engine against pycocotools, same workload, same process.

The workload is the 100-image val2014 reference in ../shared replicated 50 times (5,000 images,
~42,000 annotations, ~36,700 detections), each copy with new image and annotation ids.
pycocotools is timed over evaluate + accumulate + summarize (stdout silenced), starting from ready
COCO objects; cowdemo over ``evaluate_coco(gt_dict, results_list)``, parsing the dicts included.
Both must give identical stats. Prints one markdown table row for BENCHMARKS.md.

    .venv/bin/python bench/bench_eval.py [--copies 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from machine import describe  # noqa: E402
from table import HEADER, row  # noqa: E402

SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference/coco-map/val2014-100"


def replicate(gt: dict, results: list, copies: int) -> tuple[dict, list]:
    """``copies`` copies of every image, with new image and annotation ids."""
    image_ids = [im["id"] for im in gt["images"]]
    stride = max(image_ids) + 1
    ann_stride = max(a["id"] for a in gt["annotations"]) + 1
    images, annotations, dets = [], [], []
    for c in range(copies):
        for im in gt["images"]:
            images.append({**im, "id": im["id"] + c * stride})
        for a in gt["annotations"]:
            annotations.append(
                {**a, "id": a["id"] + c * ann_stride, "image_id": a["image_id"] + c * stride}
            )
        for r in results:
            dets.append({**r, "bbox": list(r["bbox"]), "image_id": r["image_id"] + c * stride})
    big = {k: v for k, v in gt.items() if k not in ("images", "annotations")}
    big["images"], big["annotations"] = images, annotations
    return big, dets


def time_pycocotools(gt: dict, results: list, repeats: int) -> tuple[float, np.ndarray]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    best, stats = float("inf"), None
    for _ in range(repeats):
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = copy.deepcopy(gt)
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
            evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
            start = time.perf_counter()
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            best = min(best, time.perf_counter() - start)
        stats = np.asarray(evaluator.stats)
    return best, stats


def time_cowdemo(gt: dict, results: list, repeats: int) -> tuple[float, np.ndarray]:
    from cowdemo.evaluation.detection import evaluate_coco

    best, stats = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = evaluate_coco(gt, results)
        best = min(best, time.perf_counter() - start)
        stats = result.stats_array
    return best, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=50, help="replicas of the 100 images")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for cowdemo")
    parser.add_argument("--coco-repeats", type=int, default=2, help="best of N for pycocotools")
    args = parser.parse_args(argv)
    if not REFERENCE.exists():
        print(f"skipped: {REFERENCE} is absent (the project's ../shared reference data)")
        return 0
    gt = json.loads((REFERENCE / "instances_val2014_100.json").read_text())
    results = json.loads((REFERENCE / "fakebbox100_results.json").read_text())
    gt, results = replicate(gt, results, args.copies)

    ours, ours_stats = time_cowdemo(gt, results, args.repeats)
    theirs, their_stats = time_pycocotools(gt, results, args.coco_repeats)
    if not np.array_equal(ours_stats, their_stats):
        diff = np.abs(ours_stats - their_stats).max()
        print(f"FAILED: stats differ from pycocotools by up to {diff:.3e}")
        return 1
    workload = f"{len(gt['images'])} images / {len(gt['annotations'])} gt / {len(results)} dets"
    print(f"machine: {describe()}")
    print(HEADER)
    print(row(f"COCO mAP, {workload}, identical stats", ours, theirs,
              "pycocotools evaluate+accumulate+summarize"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
