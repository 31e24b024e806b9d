"""`cowdemo datasets list|show|import|export|sample|delete`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cowdemo import cli
from cowdemo.datasets.store import SAMPLE_DONE, SAMPLE_IMAGES, DatasetStore
from cowdemo.samples import cow_photo

#: The sample: SAMPLE_DONE of its synthetic scenes done (31 cows in all 12, 22 in the done ones),
#: the rest and the real cow photo (where the machine has it) left to label.
SAMPLE_TOTAL = SAMPLE_IMAGES + (cow_photo() is not None)
SAMPLE_BOXES = 22


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["datasets", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "datasets"


def test_sample_list_show(capsys, root):
    code, out, _ = run(capsys, "--root", str(root), "list")
    assert code == 0 and "No datasets" in out
    assert run(capsys, "--root", str(root), "sample")[0] == 0
    code, out, _ = run(capsys, "--root", str(root), "list")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("synthetic-sample"))
    assert row.split()[1:4] == [str(SAMPLE_TOTAL), str(SAMPLE_DONE), str(SAMPLE_BOXES)]
    assert row.endswith("cow")
    code, out, _ = run(capsys, "--root", str(root), "show", "synthetic-sample", "--images")
    assert code == 0 and f"{SAMPLE_DONE} of {SAMPLE_TOTAL} images done, 22 boxes" in out
    assert "cow (22)" in out and "synthetic_000011.png" in out


def test_export_import_round_trip(capsys, root, tmp_path):
    run(capsys, "--root", str(root), "sample")
    for fmt in ("coco", "yolo", "voc"):
        out_zip = tmp_path / f"{fmt}.zip"
        code, out, _ = run(capsys, "--root", str(root), "export", "synthetic-sample",
                           str(out_zip), "--zip-format", fmt)
        assert code == 0 and out_zip.is_file(), out
        code, out, err = run(capsys, "--root", str(root), "import", str(out_zip), "--name",
                             f"back-{fmt}")
        assert code == 0, err
        assert (f"from {fmt}.zip (zip/{fmt}): {SAMPLE_TOTAL} images ({SAMPLE_DONE} annotated), "
                f"{SAMPLE_BOXES} boxes") in out
    store = DatasetStore(root)
    assert store.get("back-voc").num_boxes() == store.get("synthetic-sample").num_boxes()
    code, _, _ = run(capsys, "--root", str(root), "export", "back-yolo", str(tmp_path / "gt.json"),
                     "--no-images")
    assert code == 0
    assert len(json.loads((tmp_path / "gt.json").read_text())["images"]) == SAMPLE_TOTAL
    code, _, _ = run(capsys, "--root", str(root), "export", "back-yolo", str(tmp_path / "voc"),
                     "--format", "voc")
    xml = list((tmp_path / "voc" / "Annotations").iterdir())
    assert code == 0 and len(xml) == SAMPLE_DONE, "an XML per annotated (done) image"


def test_user_errors_are_one_line_and_exit_2(capsys, root, tmp_path):
    run(capsys, "--root", str(root), "sample")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 8,
                                           "height": 8}],
                               "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                                "bbox": [4, 4, 8, 8]},
                                               {"id": 2, "image_id": 5, "category_id": 1,
                                                "bbox": [0, 0, 1, 1]}],
                               "categories": [{"id": 1, "name": "cow"}]}))
    code, _, err = run(capsys, "--root", str(root), "import", str(bad))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3  # every problem, then the one-line summary
    assert "outside the 8x8 image" in lines[0] and "unknown image id 5" in lines[1]
    assert lines[2].startswith("error: bad.json (coco): import rejected, 2 problems")
    assert DatasetStore(root).names() == ["synthetic-sample"]
    for args in (["show", "nope"], ["export", "nope", str(tmp_path / "x.zip")],
                 ["import", str(tmp_path / "missing.zip"), "--name", "m"],
                 ["import", str(bad), "--name", "../evil"],
                 ["export", "synthetic-sample", str(tmp_path)],  # exists and not empty
                 ["delete", "synthetic-sample"]):
        code, _, err = run(capsys, "--root", str(root), *args)
        assert code == 2 and len(err.strip().splitlines()) == 1, (args, err)
    assert run(capsys, "--root", str(root), "delete", "synthetic-sample", "--yes")[0] == 0
    assert DatasetStore(root).names() == []


def test_real_process_uses_cowdemo_data(tmp_path):
    """`cowdemo datasets` as a real command; the store lives under COWDEMO_DATA."""
    env = {**os.environ, "COWDEMO_DATA": str(tmp_path / "data")}
    zip_path = tmp_path / "labels.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("labels/a.txt", "0 0.5 0.5 2 0.1\n")
        archive.writestr("classes.txt", "cow\n")
    result = subprocess.run([sys.executable, "-m", "cowdemo.cli", "datasets", "import",
                             str(zip_path)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "label file without an image" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "datasets" / "labels").exists()
