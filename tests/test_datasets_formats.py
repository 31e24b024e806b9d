"""Import and export: COCO → YOLO → VOC → COCO keeps every box to 1e-6 px (synthetic data and
the shared val2014-100 reference), zips of each, and malformed files of every format give a
report of every problem and leave the store unchanged."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_path
from PIL import Image

from cowdemo import images
from cowdemo.datasets import formats
from cowdemo.datasets.coco import CocoDataset
from cowdemo.datasets.formats import ImportRejected
from cowdemo.datasets.store import DatasetStore
from cowdemo.datasets.synthetic import make_dataset, make_scene
from cowdemo.errors import CowdemoError


def boxes_by_file(dataset: CocoDataset) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    """Each image's boxes (class name, xyxy), keyed by the file's base name, sorted."""
    out = {}
    for image in dataset.images:
        gt = dataset.ground_truth(image["id"])
        key = Path(image["file_name"]).name
        out[key] = sorted((str(c), tuple(map(float, b))) for c, b in zip(gt.class_names, gt.xyxy))
    return out


def assert_same_boxes(a: CocoDataset, b: CocoDataset, tol: float = 1e-6) -> int:
    left, right = boxes_by_file(a), boxes_by_file(b)
    assert left.keys() == right.keys()
    count = 0
    for key in left:
        assert [c for c, _ in left[key]] == [c for c, _ in right[key]], key
        if left[key]:
            ours, theirs = ([x for _, x in side[key]] for side in (left, right))
            diff = np.abs(np.array(ours) - np.array(theirs))
            assert diff.max() <= tol, (key, diff.max())
        count += len(left[key])
    return count


def chain(dataset: CocoDataset, tmp: Path) -> CocoDataset:
    """COCO → YOLO → VOC → COCO through files on disk."""
    formats.write_yolo(dataset, tmp / "yolo")
    yolo, report = formats.read_yolo(tmp / "yolo")
    assert report.ok, report.lines()
    formats.write_voc(yolo, tmp / "voc")
    voc, report = formats.read_voc(tmp / "voc")
    assert report.ok, report.lines()
    formats.write_coco(voc, tmp / "coco")
    back, report = formats.read_coco(tmp / "coco")
    assert report.ok, report.lines()
    return back


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> CocoDataset:
    root = tmp_path_factory.mktemp("synthetic")
    make_dataset(root, n_images=6, seed=3, n_animals=(0, 5))
    return formats.load(root)


def test_round_trip_synthetic(synthetic, tmp_path):
    back = chain(synthetic, tmp_path)
    assert assert_same_boxes(synthetic, back) == synthetic.num_boxes() > 6
    assert back.classes == synthetic.classes
    assert all(im["done"] for im in back.images)
    for image in back.images:  # the image files travel with the labels
        assert back.read_image(image["id"]).shape == (480, 640, 3)


@pytest.fixture(scope="module")
def val2014(tmp_path_factory) -> tuple[Path, Path]:
    """The shared val2014-100 annotations with a stand-in image of the right size per entry
    (the reference holds no pixels; each stand-in has its own colour, so no two are equal)."""
    json_path = shared_path("reference/coco-map/val2014-100/instances_val2014_100.json")
    folder = tmp_path_factory.mktemp("val2014") / "images"
    folder.mkdir()
    for image in json.loads(json_path.read_text())["images"]:
        color = (image["id"] % 256, image["id"] // 256 % 256, 99)
        Image.new("RGB", (image["width"], image["height"]), color).save(
            folder / image["file_name"], format="PNG")  # PNG content named .jpg: read by content
    return json_path, folder


def test_round_trip_val2014_keeps_every_box_and_class(val2014, tmp_path):
    json_path, folder = val2014
    original, report = formats.read_coco(json_path, images_dir=folder)
    assert report.ok, report.lines()
    assert (len(original.images), original.num_boxes(), len(original.classes)) == (100, 839, 80)
    back = chain(original, tmp_path)
    assert assert_same_boxes(original, back) == 839
    assert back.classes == original.classes  # all 80 names, in COCO's order (classes.txt)


def test_val2014_crowd_flags_area_and_ids_where_formats_carry_them(val2014, tmp_path):
    json_path, folder = val2014
    original = formats.load(json_path, images_dir=folder)
    crowd = {(Path(original.image_info(a["image_id"])["file_name"]).name, tuple(a["bbox"]))
             for a in original.coco["annotations"] if a["iscrowd"]}
    assert len(crowd) == 9
    # COCO → COCO keeps everything: ids, crowd, segment areas, segmentations
    formats.write_coco(original, tmp_path / "coco")
    again = formats.load(tmp_path / "coco")
    assert again.coco["annotations"] == original.coco["annotations"]
    assert [c["id"] for c in again.categories] == [c["id"] for c in original.categories]
    # VOC carries crowd flags (an extra <iscrowd> element); YOLO has no place for them
    formats.write_voc(original, tmp_path / "voc")
    voc = formats.load(tmp_path / "voc")
    got = {(Path(voc.image_info(a["image_id"])["file_name"]).name, tuple(a["bbox"]))
           for a in voc.coco["annotations"] if a["iscrowd"]}
    assert {k for k, _ in got} == {k for k, _ in crowd} and len(got) == 9
    assert_same_boxes(original, voc)


@pytest.mark.parametrize("fmt", formats.EXPORT_FORMATS)
def test_zip_round_trip(synthetic, tmp_path, fmt):
    data = formats.zip_bytes(synthetic, fmt)
    zip_path = tmp_path / f"export-{fmt}.zip"
    zip_path.write_bytes(data)
    with formats.opened(zip_path) as (dataset, report):
        assert report.ok and report.format == f"zip/{fmt}", report.lines()
        assert assert_same_boxes(synthetic, dataset) == synthetic.num_boxes()
        image_files = [dataset.image_path(i) for i in dataset.image_ids]
        assert all(p.is_file() for p in image_files)
    assert not any(p.exists() for p in image_files)  # the unpacked copy is cleaned up


def test_zip_layouts(synthetic):
    names = {fmt: set(zipfile.ZipFile(io.BytesIO(formats.zip_bytes(synthetic, fmt))).namelist())
             for fmt in formats.EXPORT_FORMATS}
    assert {"annotations.json", "images/synthetic_000000.png"} <= names["coco"]
    assert {"classes.txt", "data.yaml", "labels/synthetic_000000.txt"} <= names["yolo"]
    assert {"classes.txt", "Annotations/synthetic_000000.xml",
            "JPEGImages/synthetic_000000.png"} <= names["voc"]


def test_yolo_and_voc_files_look_like_the_standard(synthetic, tmp_path):
    formats.write_yolo(synthetic, tmp_path / "yolo")
    image = synthetic.images[0]
    gt = synthetic.ground_truth(image["id"])
    line = (tmp_path / "yolo/labels/synthetic_000000.txt").read_text().splitlines()[0]
    cls, xc, _, _, h = line.split()
    x1, y1, x2, y2 = gt.xyxy[0]
    assert cls == "0" and float(xc) == pytest.approx((x1 + x2) / 2 / 640, abs=1e-12)
    assert float(h) == pytest.approx((y2 - y1) / 480, abs=1e-12)
    formats.write_voc(synthetic, tmp_path / "voc")
    xml = (tmp_path / "voc/Annotations/synthetic_000000.xml").read_text()
    # 1-based inclusive pixels: a box starting at pixel-edge x1 has xmin = x1 + 1
    assert f"<xmin>{int(x1) + 1}</xmin>" in xml and f"<xmax>{int(x2)}</xmax>" in xml
    assert "<name>cow</name>" in xml and "<width>640</width>" in xml


def test_voc_zero_based_files(synthetic, tmp_path):
    formats.write_voc(synthetic, tmp_path / "voc0", one_based=False)
    dataset, report = formats.read_voc(tmp_path / "voc0", one_based=False)
    assert report.ok
    assert_same_boxes(synthetic, dataset)


def test_not_done_images_stay_not_done(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    store.create("mixed")
    ids = store.add_images("mixed", [(f"{i}.png", images.encode_png(make_scene(seed=i).image))
                                     for i in range(3)])
    store.set_boxes("mixed", ids[0], [("cow", [1, 1, 50, 50])])
    store.mark_done("mixed", ids[0])
    store.mark_done("mixed", ids[1])  # done, no boxes
    dataset = store.get("mixed")
    for fmt in formats.EXPORT_FORMATS:
        formats.export(dataset, tmp_path / fmt, fmt)
        back = formats.load(tmp_path / fmt)
        done = {Path(im["file_name"]).name: im["done"] for im in back.images}
        assert done == {"0.png": True, "1.png": True, "2.png": False}, fmt
        assert back.num_boxes() == 1


def test_images_only_folder_and_detection(tmp_path):
    for i in range(2):
        images.write_png(tmp_path / "pics" / f"{i}.png", make_scene(seed=i).image)
    assert formats.detect_format(tmp_path / "pics") == "images"
    dataset, report = formats.read(tmp_path / "pics")
    assert report.ok and len(dataset.images) == 2 and report.num_done == 0
    assert dataset.classes == ("cow",)


def test_yaml_class_names():
    assert formats.parse_yaml_names("nc: 2\nnames: ['cow', \"calf\"]\n") == ["cow", "calf"]
    assert formats.parse_yaml_names("names: [cow, calf]  # two") == ["cow", "calf"]
    assert formats.parse_yaml_names("names:\n  - cow\n  - calf\nnc: 2\n") == ["cow", "calf"]
    assert formats.parse_yaml_names("names:\n  1: calf\n  0: cow\n") == ["cow", "calf"]
    assert formats.parse_yaml_names("train: images\n") is None


def test_export_refuses_to_overwrite(synthetic, tmp_path):
    formats.export(synthetic, tmp_path / "out", "coco")
    with pytest.raises(CowdemoError, match="already exists"):
        formats.export(synthetic, tmp_path / "out", "yolo")
    formats.export(synthetic, tmp_path / "out", "yolo", overwrite=True)
    assert (tmp_path / "out" / "classes.txt").is_file()
    assert not (tmp_path / "out" / "annotations.json").exists()
    path = formats.export(synthetic, tmp_path / "only.json", "coco", with_images=False)
    assert json.loads(path.read_text())["images"][0]["file_name"] == "synthetic_000000.png"


# --- malformed input ----------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path) -> DatasetStore:
    store = DatasetStore(tmp_path / "datasets")
    store.create("herd")
    store.add_images("herd", [("a.png", images.encode_png(make_scene(seed=0, width=64,
                                                                     height=48).image))])
    return store


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".locks" not in p.parts}


def assert_rejected(store: DatasetStore, source: Path, expected: list[str], **kwargs) -> list[str]:
    """The import is refused with one error line per expected problem, and the store is
    exactly as it was (also when it would replace an existing dataset)."""
    before = snapshot(store.root)
    for name, replace in (("incoming", False), ("herd", True)):
        with pytest.raises(ImportRejected) as info:
            store.import_path(name, source, replace=replace, **kwargs)
        assert snapshot(store.root) == before
    report = info.value.report
    assert "\n" not in str(info.value) and "import rejected" in str(info.value)
    for text in expected:
        assert any(text in e for e in report.errors), (text, report.errors)
    assert len(report.errors) == len(expected), report.errors
    assert all("\n" not in line for line in report.lines())
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == [".locks"]
    return report.errors


def coco_with(images_list, annotations, categories=None) -> dict:
    return {"images": images_list, "annotations": annotations,
            "categories": categories or [{"id": 1, "name": "cow"}, {"id": 2, "name": "calf"}]}


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_malformed_coco_reports_every_problem(store, tmp_path):
    ok = {"width": 100, "height": 80}
    data = coco_with(
        [{"id": 1, "file_name": "a.jpg", **ok},
         {"id": 1, "file_name": "b.jpg", **ok},                      # duplicate image id
         {"id": 3, **ok},                                             # no file_name
         {"id": 4, "file_name": "d.jpg", "width": 0, "height": 80}],  # bad size
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
         {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 10, 10]},   # unknown image
         {"id": 3, "image_id": 1, "category_id": 7, "bbox": [0, 0, 10, 10]},   # unknown class
         {"id": 4, "image_id": 1, "category_id": 1},                           # no bbox
         {"id": 5, "image_id": 1, "category_id": 1, "bbox": [95, 0, 10, 10]},  # out of bounds
         {"id": 6, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10]},    # zero area
         {"id": 6, "image_id": 1, "category_id": 1, "bbox": [5, 5, 2, 2]},     # duplicate id
         {"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},        # 3 numbers
         {"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 2}],
        [{"id": 1, "name": "cow"}, {"id": 1, "name": "calf"}],                 # duplicate id
    )
    errors = assert_rejected(store, write_json(tmp_path / "bad.json", data), [
        "image id 1 is used 2 times", "image #2 (id 3) is missing 'file_name'",
        "'width' and 'height' must be positive", "unknown image id 9",
        "unknown category id 7", "missing 'bbox'", "is outside the 100x80 image",
        "has zero area", "annotation id 6 is used 2 times", "must be four numbers",
        "'iscrowd' must be 0 or 1", "category id 1 is used 2 times",
    ])
    assert all(e.startswith("bad.json: ") for e in errors)


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"images": [], "categories": []}', "'annotations' is missing"),
])
def test_coco_that_is_not_coco(store, tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_text(content)
    assert_rejected(store, path, [expected])


def test_coco_with_bad_image_files(store, tmp_path):
    folder = tmp_path / "ds"
    images.write_png(folder / "images" / "good.png", make_scene(seed=1).image)
    images.write_png(folder / "images" / "small.png", make_scene(seed=2, width=64,
                                                                 height=48).image)
    (folder / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    write_json(folder / "annotations.json", coco_with(
        [{"id": 1, "file_name": "good.png", "width": 640, "height": 480},
         {"id": 2, "file_name": "small.png", "width": 640, "height": 480},
         {"id": 3, "file_name": "broken.jpg", "width": 640, "height": 480},
         {"id": 4, "file_name": "missing.png", "width": 640, "height": 480}], []))
    assert_rejected(store, folder, ["the file is 64x48 but the JSON says 640x480",
                                    "broken.jpg is corrupt", "missing.png): image file not found"])


def yolo_folder(tmp_path: Path, labels: dict[str, str], classes: str | None = "cow\n") -> Path:
    root = tmp_path / "yolo"
    for stem in ("a", "b", "c"):
        images.write_png(root / "images" / f"{stem}.png", make_scene(seed=ord(stem), width=100,
                                                                     height=50).image)
    for stem, text in labels.items():
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "labels" / f"{stem}.txt").write_text(text)
    if classes is not None:
        (root / "classes.txt").write_text(classes)
    return root


def test_malformed_yolo_reports_every_problem(store, tmp_path):
    root = yolo_folder(tmp_path, {
        "a": "0 0.5 0.5 0.2\n0 0.5 0.5 0.2 0.2\n",           # 4 values, then a good line
        "b": "3 0.5 0.5 0.2 0.2\n0 0.95 0.5 0.2 0.2\n",      # unknown class, out of bounds
        "c": "0 0.5 0.5 0 0.2\ncow 0.5 0.5 0.2 0.2\n",       # zero area, not a number
        "orphan": "0 0.5 0.5 0.1 0.1\n",                     # no image
    })
    (root / "images" / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    errors = assert_rejected(store, root, [
        "labels/a.txt line 1: expected 5 values", "labels/b.txt line 1: unknown class 3",
        "labels/b.txt line 2: box leaves the image", "labels/c.txt line 1: box has zero area",
        "labels/c.txt line 2: 'cow 0.5 0.5 0.2 0.2' is not a class number",
        "labels/orphan.txt: label file without an image", "images/d.png: ",
    ], fmt="yolo")
    assert any("d.png is corrupt" in e or "d.png is not an image" in e for e in errors)


def test_yolo_without_class_names(store, tmp_path):
    root = yolo_folder(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, classes=None)
    assert_rejected(store, root, ["no classes.txt, obj.names or data.yaml found"], fmt="yolo")
    dataset, _ = store.import_path("named", root, "yolo", classes=["cow"])  # --classes works
    assert dataset.num_boxes() == 1 and len(dataset.images) == 3
    assert sorted(im["done"] for im in dataset.images) == [False, False, True]


VOC_OBJECT = ("<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
              "<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")


def voc_xml(file_name: str, *objects: tuple, size: tuple[int, int] = (100, 50)) -> str:
    body = "".join(VOC_OBJECT.format(name=n, x1=a, y1=b, x2=c, y2=d) for n, a, b, c, d in objects)
    return (f"<annotation><filename>{file_name}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{body}</annotation>")


def test_malformed_voc_reports_every_problem(store, tmp_path):
    root = tmp_path / "voc"
    for stem in ("a", "b", "c", "d", "e", "f"):
        images.write_png(root / "JPEGImages" / f"{stem}.png", make_scene(seed=1, width=100,
                                                                        height=50).image)
    (root / "classes.txt").write_text("cow\ncalf\n")
    files = {
        "a.xml": "<annotation><filename>a.png</filename>",                      # not XML
        "b.xml": "<annotation><size/></annotation>",                            # no filename
        "c.xml": voc_xml("zzz.png"),                                            # unknown image
        "d.xml": voc_xml("d.png", ("dog", 1, 1, 10, 10), ("cow", 1, 1, 101, 10)),  # class, bounds
        "e.xml": voc_xml("e.png", ("cow", 20, 5, 10, 10), ("cow", 0, 5, 10, 10)),  # zero, 0-based
        "f.xml": voc_xml("f.png", size=(640, 480)),                             # wrong size
        "g.xml": '<!DOCTYPE a [<!ENTITY x "y">]><annotation/>',                   # entities
        "h.xml": "<notvoc/>",
        "i.xml": voc_xml("a.png", ("cow", 1, 1, 5, "many")),                    # not a number
    }
    for name, text in files.items():
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / name).write_text(text)
    assert_rejected(store, root, [
        "Annotations/a.xml is not valid XML", "Annotations/b.xml is missing <filename>",
        "Annotations/c.xml: unknown image 'zzz.png'", "d.xml object 1: unknown class 'dog'",
        "d.xml object 2: box [0, 0, 101, 10] (x1, y1, x2, y2) is outside the 100x50 image",
        "e.xml object 1: box [19, 4, 10, 10] has zero area",
        "e.xml object 2 (cow): xmin/ymin 0, 5 is below 1",
        "f.xml: <size> says 640x480 but f.png is 100x50",
        "g.xml declares a DOCTYPE or entities", "h.xml: root element is <notvoc>",
        "i.xml object 1 (cow): <bndbox> needs numeric",
    ], fmt="voc")


def test_voc_zero_based_import_of_the_same_files(store, tmp_path):
    root = tmp_path / "voc"
    images.write_png(root / "JPEGImages" / "a.png", make_scene(seed=1, width=100,
                                                              height=50).image)
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.xml").write_text(voc_xml("a.png", ("cow", 0, 0, 100, 50)))
    assert_rejected(store, root, ["is below 1"], fmt="voc")
    dataset, _ = store.import_path("zero", root, "voc", voc_one_based=False)
    assert store.boxes("zero", dataset.image_ids[0]) == [("cow", [0.0, 0.0, 100.0, 50.0])]


def test_malformed_zips(store, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    assert_rejected(store, junk, ["not a readable zip file"], fmt="zip")
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("../../evil.txt", "x")
        archive.writestr("annotations.json", "{}")
    assert_rejected(store, slip, ["zip entry '../../evil.txt' points outside the archive"])
    assert not (tmp_path / "evil.txt").exists() and not (store.root.parent / "evil.txt").exists()
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("data/annotations.json", json.dumps(coco_with(
            [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
            [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5]}])))
    assert_rejected(store, inner, ["unknown image id 2"])


def test_zip_size_limit(store, tmp_path, monkeypatch):
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images/zeros.bin", b"\0" * 100_000)
    monkeypatch.setenv("COWDEMO_MAX_ZIP_BYTES", "50000")
    assert_rejected(store, big, ["over the limit of 50,000"])


def test_read_refuses_unknown_sources(tmp_path):
    dataset, report = formats.read(tmp_path / "nope")
    assert dataset is None and "no such file or folder" in report.errors[0]
    (tmp_path / "x.xml").write_text("<annotation/>")
    _, report = formats.read(tmp_path / "x.xml")
    assert "can only be COCO JSON (.json) or a zip" in report.errors[0]
