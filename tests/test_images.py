import io

import numpy as np
import pytest
from PIL import Image

from cowdemo import images
from cowdemo.errors import CowdemoError


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rgb_image(w=40, h=30) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (200, 10, 10)
    return Image.fromarray(arr)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_formats_decode_to_rgb_uint8(fmt):
    out = images.load(encode(rgb_image(), fmt))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert abs(int(out[5, 5, 0]) - 200) < 12 and out[5, 35].max() < 12


def test_wrong_extension_is_read_by_content(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(rgb_image(), "PNG"))
    assert images.load(path).shape == (30, 40, 3)


def test_grayscale_palette_rgba_16bit():
    gray = images.load(encode(Image.new("L", (8, 6), 77), "PNG"))
    assert gray.shape == (6, 8, 3) and (gray == 77).all()
    rgba = Image.new("RGBA", (8, 6), (255, 0, 0, 0))
    assert (images.load(encode(rgba, "PNG")) == 255).all(), "transparent → white"
    sixteen = Image.fromarray(np.full((6, 8), 65535, np.uint16))
    out = images.load(encode(sixteen, "PNG"))
    assert out.shape == (6, 8, 3) and (out == 255).all()
    pal = rgb_image().convert("P")
    assert images.load(encode(pal, "PNG")).shape == (30, 40, 3)


def test_exif_rotation_is_applied():
    img = rgb_image(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = images.load(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.shape == (40, 30, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"hello, not an image at all", "not an image"),
        (encode(rgb_image(400, 300), "PNG")[:200], "corrupt or truncated"),
    ],
)
def test_bad_bytes_give_one_line_errors(data, message):
    with pytest.raises(CowdemoError, match=message) as info:
        images.load(data, name="upload.png")
    assert "\n" not in str(info.value) and "upload.png" in str(info.value)


def test_truncated_jpeg_is_refused():
    data = encode(rgb_image(400, 300), "JPEG")
    with pytest.raises(CowdemoError, match="corrupt or truncated"):
        images.load(data[: len(data) // 2])


def test_decompression_bomb_refused_before_decoding(monkeypatch):
    monkeypatch.setenv("COWDEMO_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(CowdemoError, match="over the limit of 1,000"):
        images.load(encode(rgb_image(40, 30), "PNG"))
    # a real bomb: 30000 x 30000 of one colour compresses to a small PNG
    monkeypatch.delenv("COWDEMO_MAX_IMAGE_PIXELS")
    bomb = encode(Image.new("1", (30000, 30000)), "PNG")
    assert len(bomb) < 1_000_000
    with pytest.raises(CowdemoError, match="900,000,000 pixels"):
        images.load(bomb)


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(CowdemoError, match="no such file"):
        images.load(tmp_path / "nope.png")
    with pytest.raises(CowdemoError, match="is a folder"):
        images.load(tmp_path)


def test_find_images_and_write_png(tmp_path):
    images.write_png(tmp_path / "a" / "x.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert images.find_images([tmp_path]) == [tmp_path / "a" / "x.png"]
    assert not list((tmp_path / "a").glob(".*tmp"))
    with pytest.raises(CowdemoError):
        images.find_images([tmp_path / "missing"])
    assert len(images.content_hash(b"abc")) == 64
