"""Every training source ends in the same CocoDataset: a local Deep Lake dataset made here with
the v3 API (the code path hub://activeloop/coco-train takes), a local COCO download filtered
by class, the app's store, the generator; and DetectorBox.train as in the notebook."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from training_support import BASE, FAST_SETTINGS, synthetic, write_random_base

from cowdemo import images as image_io
from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.coco_download import load_coco_download
from cowdemo.datasets.deeplake_hub import import_deeplake, is_deeplake_source, to_xywh
from cowdemo.datasets.synthetic import make_scene
from cowdemo.errors import CowdemoError
from cowdemo.training.sources import check_source, open_training_dataset


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("COWDEMO_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_deeplake_boxes_in_every_mode_become_coco_xywh():
    ltwh = np.array([[10, 20, 30, 40]], float)
    assert to_xywh(ltwh, {"mode": "LTWH", "type": "pixel"}, 100, 100).tolist() == [[10, 20, 30,
                                                                                    40]]
    assert to_xywh([[10, 20, 40, 60]], {"mode": "LTRB"}, 100, 100).tolist() == [[10, 20, 30, 40]]
    assert to_xywh([[25, 40, 30, 40]], {"mode": "CCWH"}, 100, 100).tolist() == [[10, 20, 30, 40]]
    fractional = to_xywh([[0.1, 0.2, 0.3, 0.4]], {"mode": "LTWH", "type": "fractional"}, 100,
                         100)
    np.testing.assert_allclose(fractional, [[10, 20, 30, 40]])
    with pytest.raises(CowdemoError, match="Unknown Deep Lake box mode"):
        to_xywh(ltwh, {"mode": "XYZW"}, 1, 1)


@pytest.fixture
def local_deeplake(tmp_path):
    """A COCO-like Deep Lake v3 dataset on disk: 5 scenes, 4 with cows (sample 3: dogs only)."""
    deeplake = pytest.importorskip("deeplake")
    source = tmp_path / "dl-coco"
    ds = deeplake.empty(str(source), overwrite=True, verbose=False)
    names = ["person", "dog", "cow"]  # COCO-like: cow is not the first class
    scenes = [make_scene(seed=s, width=160, height=120) for s in range(5)]
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("boxes", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        ds.create_tensor("categories", htype="class_label", class_names=names)
        ds.create_tensor("iscrowds", dtype="int64")
        for k, scene in enumerate(scenes):
            xywh = scene.boxes.copy()
            xywh[:, 2:] -= xywh[:, :2]
            labels = np.full(len(xywh), 2 if k != 3 else 1)  # sample 3 has only "dogs"
            ds.append({"images": scene.image, "boxes": xywh.astype(np.float32),
                       "categories": labels.astype(np.uint32),
                       "iscrowds": np.zeros(len(xywh), np.int64)})
    return source, scenes


def test_local_deeplake_dataset_filtered_to_cows(tmp_path, data_env, local_deeplake):
    source, scenes = local_deeplake
    assert is_deeplake_source(source) and is_deeplake_source("hub://activeloop/coco-train")

    seen = []
    cows = open_training_dataset(str(source), ["cow"], progress=lambda *p: seen.append(p))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)], "the import reports its progress"
    assert isinstance(cows, CocoDataset) and cows.classes == ("cow",)
    assert len(cows.image_ids) == 4, "the sample without a cow is filtered out"
    first = cows.images[0]
    assert first["file_name"].endswith(".jpg") and first["width"] == 160
    gt = cows.ground_truth(cows.image_ids[0])
    np.testing.assert_allclose(gt.xyxy, scenes[0].boxes, atol=1e-4)
    assert cows.read_image(cows.image_ids[0]).shape == (120, 160, 3)
    assert cows.root.parent == data_env / "imported"
    again = import_deeplake(str(source), ["cow"])  # read back, not imported twice
    assert again.coco == cows.coco
    with pytest.raises(CowdemoError, match="has no class 'horse'"):
        import_deeplake(str(source), ["horse"], out_dir=tmp_path / "x")


def test_local_coco_download_filtered_by_category_name(tmp_path):
    root = tmp_path / "coco"
    synthetic(root / "src", n=6, seed=2, width=96, height=72)
    source = json.loads((root / "src" / "annotations.json").read_text())
    (root / "annotations").mkdir()
    shutil.move(root / "src" / "images", root / "train2017")
    for im in source["images"]:
        im["file_name"] = im["file_name"].removeprefix("images/")
    source["categories"] = [{"id": 18, "name": "dog"}, {"id": 21, "name": "cow"}]
    for ann in source["annotations"]:  # images 1 and 2 hold dogs only
        ann["category_id"] = 18 if ann["image_id"] <= 2 else 21
    instances = root / "annotations" / "instances_train2017.json"
    instances.write_text(json.dumps(source))

    cows = open_training_dataset(str(instances), ["cow"])
    assert cows.root == root / "train2017", "COCO's layout is found without --images"
    assert cows.image_ids == [3, 4, 5, 6] and cows.classes == ("cow",)
    assert cows.name == "train2017-cow"
    assert image_io.load(cows.image_path(3)).shape == (72, 96, 3)
    limited = load_coco_download(instances, root / "train2017", ["cow", "dog"], limit=2)
    assert limited.image_ids == [1, 2]
    with pytest.raises(CowdemoError, match="has no category 'horse'"):
        load_coco_download(instances, classes=["horse"])


def test_store_names_folders_and_the_generator(tmp_path, data_env):
    from cowdemo.datasets.store import SAMPLE_DONE, DatasetStore

    DatasetStore().ensure_sample()
    sample = open_training_dataset("synthetic-sample", ["cow"])
    assert len(sample.image_ids) == SAMPLE_DONE, "the images marked done, not those left to label"
    folder = synthetic(tmp_path / "folder", n=3, seed=1, width=64, height=48)
    assert len(open_training_dataset(str(folder), ["cow"]).image_ids) == 3
    generated = open_training_dataset("synthetic:5:96x72", ["cow"])
    assert len(generated.image_ids) == 5 and generated.images[0]["width"] == 96
    check_source("synthetic-sample")
    with pytest.raises(CowdemoError, match="There is no dataset named 'herd'"):
        check_source("herd")
    with pytest.raises(CowdemoError, match="Dataset /no/such not found"):
        open_training_dataset("/no/such", ["cow"])


@pytest.mark.slow
def test_detector_box_train_as_in_the_notebook(tmp_path, data_env, monkeypatch):
    from cowdemo.box import DetectorBox
    from cowdemo.runs import RunStore

    checkpoints = tmp_path / "checkpoints"
    write_random_base(checkpoints)
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    monkeypatch.setenv("COWDEMO_RUNS_DB", f"sqlite:///{data_env / 'runs.sqlite'}")
    cows = CocoDataset.load(synthetic(tmp_path / "cows", n=8, seed=6, width=128, height=96))
    box = DetectorBox(BASE, device="cpu")
    result = box.train(cows, iterations=3, out="box-cows", batch_size=1, eval_at_start=False,
                       **{**FAST_SETTINGS, "image_size": 96, "max_size": 128})
    assert result.completed and result.checkpoint == checkpoints / "box-cows.pt"
    assert box.name == "box-cows" and box.detector.classes == ("cow",)
    assert box.detector.model.transform.min_size == (96,), "the size it learned at"
    comparison = result.comparison
    assert comparison["base_model"] == BASE and set(comparison["base"]) >= {"AP", "AP50"}
    store = RunStore()
    kinds = {(r.kind, r.model) for r in store.list()}
    assert {("evaluation", "box-cows"), ("evaluation", BASE), ("training", "box-cows")} <= kinds
    training = store.get(result.run_ids["training"])
    assert training.dataset_hash == cows.content_hash()
    assert training.settings["iterations"] == 3


@pytest.mark.slow
def test_training_on_deeplake_reports_the_import_then_trains(tmp_path, data_env, local_deeplake,
                                                            monkeypatch):
    from cowdemo.training import TrainConfig, train
    from cowdemo.training.monitor import read_status

    source, _ = local_deeplake
    checkpoints = tmp_path / "checkpoints"
    write_random_base(checkpoints)
    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    events = []
    config = TrainConfig(base=BASE, classes=("cow",), iterations=2, batch_size=1,
                         eval_at_start=False, device="cpu",
                         **{**FAST_SETTINGS, "image_size": 96, "max_size": 128})
    result = train(config, str(source), out="dl-cows", monitor_dir=tmp_path / "job",
                   compare=False, record=False, progress=events.append)
    states = [e["state"] for e in events]
    importing = [(e["done"], e["total"]) for e in events if e["state"] == "importing"]
    assert importing == [(1, 4), (2, 4), (3, 4), (4, 4)], "every sample with a cow, once"
    assert states.index("importing") < states.index("training")
    assert result.completed and result.iteration == 2
    status = read_status(tmp_path / "job")
    assert status["state"] == "completed" and status["imported"] == [4, 4]
