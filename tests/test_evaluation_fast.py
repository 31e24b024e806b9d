"""coco_stats: the 12 stats through hotcoco, from files and from loaded objects, identical to
pycocotools on the shared reference, with cowdemo's own engine as an equal fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import shared_path
from test_evaluation_detection import pycocotools_eval

from cowdemo.errors import CowdemoError
from cowdemo.evaluation.detection import STAT_NAMES, load_coco_json
from cowdemo.evaluation.fast import coco_stats

REFERENCE = "reference/coco-map/val2014-100"


@pytest.fixture(scope="module")
def files():
    folder = shared_path(REFERENCE)
    return folder / "instances_val2014_100.json", folder / "fakebbox100_results.json"


def test_identical_to_pycocotools_from_files_and_objects(files):
    gt_path, res_path = files
    gt, res = json.loads(gt_path.read_text()), json.loads(res_path.read_text())
    expected = pycocotools_eval(gt, res).stats
    for engine in ("hotcoco", "cowdemo"):
        for source in ((gt_path, res_path), (str(gt_path), str(res_path)), (gt, res)):
            stats = coco_stats(*source, engine=engine)
            assert list(stats) == list(STAT_NAMES)
            np.testing.assert_array_equal(np.array(list(stats.values())), expected)


def test_empty_results_and_bad_input(files, tmp_path):
    gt_path, _ = files
    stats = coco_stats(gt_path, [])
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 1}]')
    with pytest.raises(CowdemoError):
        coco_stats(gt_path, bad)


def test_orjson_and_json_parse_the_same(files, tmp_path):
    gt_path, _ = files
    assert load_coco_json(gt_path) == json.loads(gt_path.read_text())
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [1, 2')
    with pytest.raises(CowdemoError, match=r"not valid JSON .* line 1"):
        load_coco_json(broken)


def test_boxes_only_parsing_keeps_what_box_evaluation_reads_and_the_same_errors(files, tmp_path):
    from cowdemo.evaluation.detection import evaluate_coco

    gt_path, res_path = files
    full = json.loads(gt_path.read_text())
    boxes = load_coco_json(gt_path, boxes_only="ground truth")
    assert len(boxes["annotations"]) == len(full["annotations"]) > 0
    kept = ("image_id", "category_id", "bbox", "area", "iscrowd")
    assert boxes["annotations"] == [{k: a[k] for k in kept if k in a}
                                    for a in full["annotations"]], "polygons are skipped"
    assert boxes["images"] == [{"id": im["id"]} for im in full["images"]]
    assert boxes["categories"] == [{"id": c["id"], "name": c["name"]} for c in full["categories"]]
    assert load_coco_json(res_path, boxes_only="results") == json.loads(res_path.read_text())
    np.testing.assert_array_equal(list(evaluate_coco(gt_path, res_path).stats.values()),
                                  pycocotools_eval(full, json.loads(res_path.read_text())).stats)
    # what does not fit the schema is parsed in full and named as before
    for text, message in (('{"images": [1, 2', r"not valid JSON .* line 1"),
                          ('{"images": 3}', r"images"),
                          ('{"images": [{"id": 1}], "annotations": [{"bbox": "x"}]}', r"bbox")):
        broken = tmp_path / "broken.json"
        broken.write_text(text)
        with pytest.raises(CowdemoError, match=message):
            evaluate_coco(broken, [])


def test_identical_to_pycocotools_where_hotcoco_alone_is_one_bit_off(files):
    """On 3 copies of the reference hotcoco's own summarize differs from pycocotools in the
    last bit (AP, APs); coco_stats summarizes hotcoco's curves as pycocotools does."""
    import sys

    from helpers import REPO

    sys.path.insert(0, str(REPO / "bench"))
    from bench_eval import replicate

    gt_path, res_path = files
    gt, res = replicate(json.loads(gt_path.read_text()), json.loads(res_path.read_text()), 3)
    expected = pycocotools_eval(gt, res).stats
    np.testing.assert_array_equal(np.array(list(coco_stats(gt, res).values())), expected)
