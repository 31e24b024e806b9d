"""The detectron2 backend, run for real against detectron2 0.6 itself.

`scripts/setup.sh --test` installs detectron2 0.6 (its Python sources, test-only) into
.cache/detectron2 (scripts/install-detectron2.sh). This test puts that folder on sys.path for
itself only, writes a model-zoo ``.pkl`` from a seeded detectron2 model, loads it through the
registry like a user's download, and checks our ``Detections`` against detectron2's own
``DefaultPredictor`` on the same image: same boxes, scores and classes, named by COCO class.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
D2_SITE = REPO / ".cache" / "detectron2"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detectron2_site():
    """detectron2 importable for this module only; afterwards the process is as before (other
    tests check the registry's "detectron2 is not installed" state)."""
    if not (D2_SITE / "detectron2" / "__init__.py").is_file():
        pytest.skip(
            f"detectron2 is not installed in {D2_SITE}: `scripts/setup.sh --test` installs it "
            "(or run scripts/install-detectron2.sh to see why it cannot)"
        )
    sys.path.insert(0, str(D2_SITE))
    importlib.invalidate_caches()
    try:
        yield D2_SITE
    finally:
        sys.path.remove(str(D2_SITE))
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "") or "").startswith(str(D2_SITE)):
                del sys.modules[name]
        importlib.invalidate_caches()


def _cfg(weights: str = ""):
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    from cowdemo.models.detectron2_backend import CONFIG

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = weights
    return cfg


@pytest.fixture(scope="module")
def model_zoo_checkpoints(detectron2_site, tmp_path_factory) -> Path:
    """A checkpoints folder holding model_final_280758.pkl (the model zoo's file name) written in
    the model zoo's format ({"model": {name: numpy array}, "__author__": ...}) from a seeded
    R50-FPN Faster R-CNN whose box classifier favours *dog* (contiguous id 16) then *cow* (19)."""
    import torch
    from detectron2.modeling import build_model

    from cowdemo.models.detectron2_backend import WEIGHTS_URL

    torch.manual_seed(0)
    model = build_model(_cfg()).eval()
    head = model.roi_heads.box_predictor.cls_score  # 80 classes + background (last)
    with torch.no_grad():
        head.weight.mul_(1e-4)  # the biases decide the class; features still vary the scores
        head.bias.fill_(-4.0)
        head.bias[16] = 4.0
        head.bias[19] = 3.5
        head.bias[80] = 0.0
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    folder = tmp_path_factory.mktemp("d2-checkpoints")
    with open(folder / Path(WEIGHTS_URL).name, "wb") as handle:
        pickle.dump({"model": state, "__author__": "cowdemo test (seeded)"}, handle)
    return folder


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A small real RGB image: the cow photo when present, else a seeded synthetic scene."""
    from helpers import COW_PHOTO_CANDIDATES

    from cowdemo.images import load

    photo = next((p for p in COW_PHOTO_CANDIDATES if p.is_file()), None)
    if photo is not None:
        rgb = load(photo)
        return np.ascontiguousarray(rgb[::4, ::4])  # 285x190: fast on 2 cores
    rng = np.random.default_rng(0)
    rgb = np.full((180, 240, 3), 90, np.uint8)
    rgb[40:140, 60:200] = rng.integers(0, 255, (100, 140, 3), dtype=np.uint8)
    return rgb


def test_detectron2_is_importable_and_listed_ready(detectron2_site, monkeypatch):
    from cowdemo.models.detectron2_backend import detectron2_available
    from cowdemo.models.registry import DETECTRON2_NAME, READY, find_model

    assert detectron2_available() == (True, "")
    import detectron2

    assert detectron2.__version__ == "0.6"
    assert Path(detectron2.__file__).is_relative_to(detectron2_site)
    assert find_model(DETECTRON2_NAME).status == READY


def test_backend_matches_detectron2_default_predictor(model_zoo_checkpoints, image, monkeypatch):
    from detectron2.engine import DefaultPredictor

    from cowdemo.coco import COCO_CLASSES
    from cowdemo.models.detectron2_backend import Detectron2Detector
    from cowdemo.models.registry import DETECTRON2_NAME, load_detector

    monkeypatch.setenv("COWDEMO_CHECKPOINTS", str(model_zoo_checkpoints))
    monkeypatch.setenv("COWDEMO_OFFLINE", "1")
    detector = load_detector(DETECTRON2_NAME, device="cpu")  # finds the .pkl by its zoo name
    assert isinstance(detector, Detectron2Detector)
    ours = detector.predict(image)

    cfg = _cfg(str(model_zoo_checkpoints / "model_final_280758.pkl"))
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = detector.min_score
    theirs = DefaultPredictor(cfg)(np.ascontiguousarray(image[:, :, ::-1]))["instances"]

    assert len(ours) > 0, "the seeded model should find boxes"
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours.xyxy, theirs.pred_boxes.tensor.numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.scores, theirs.scores.numpy(), atol=1e-5)
    np.testing.assert_array_equal(ours.class_ids, theirs.pred_classes.numpy())
    expected_names = [COCO_CLASSES[i] for i in theirs.pred_classes.tolist()]
    assert ours.class_names.tolist() == expected_names
    assert COCO_CLASSES[16] == "dog" and "dog" in expected_names
    assert set(expected_names) <= {"dog", "cow"}
    h, w = image.shape[:2]
    assert (ours.xyxy[:, [0, 2]] <= w + 1e-3).all() and (ours.xyxy[:, [1, 3]] <= h + 1e-3).all()


def test_pickled_code_in_a_model_zoo_file_is_refused(detectron2_site, tmp_path):
    from cowdemo.errors import CowdemoError
    from cowdemo.models.detectron2_backend import read_model_zoo_pkl

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "model_final_280758.pkl"
    bad.write_bytes(pickle.dumps({"model": {"w": Payload()}, "__author__": "x"}))
    with pytest.raises(CowdemoError, match=r"refusing to unpickle builtins\.print"):
        read_model_zoo_pkl(bad)


def test_the_test_only_install_matches_its_pins(detectron2_site):
    """requirements-detectron2.txt pins every package exactly, and .cache/detectron2 holds
    exactly those versions (plus pb1-detectron2 0.6 itself)."""
    from importlib.metadata import distributions

    pins = {}
    for line in (REPO / "requirements-detectron2.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"unpinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version
                 for d in distributions(path=[str(detectron2_site)])}
    assert installed == {**pins, "pb1-detectron2": "0.6"}
