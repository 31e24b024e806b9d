"""Decoding and validating images: any bytes or path in, an RGB uint8 array out, or one clear error.

Handles what real uploads contain: EXIF rotation, grayscale, palette, RGBA (composited on white),
16-bit and float images (scaled to 8 bit), and decompression bombs (refused before decoding).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cowdemo.errors import CowdemoError

#: Largest image accepted, in pixels (width x height). Override with COWDEMO_MAX_IMAGE_PIXELS.
DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

# PIL's own bomb check warns at 89 MP and raises at 179 MP; ours is explicit and checked first.
Image.MAX_IMAGE_PIXELS = None


def max_pixels() -> int:
    try:
        return int(os.environ.get("COWDEMO_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))
    except ValueError:
        return DEFAULT_MAX_PIXELS


def load(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
    """Decode an image file (bytes or path) into an RGB uint8 array of shape (h, w, 3).

    The format is read from the content, not the file name, so a PNG named ``.jpg`` loads.
    Raises :class:`CowdemoError` with a one-line message for empty, truncated, corrupt,
    non-image and oversized files.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        from cowdemo.files import require_regular_file

        require_regular_file(path, "image file")  # a FIFO named .jpg would block forever
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CowdemoError(f"{path}: no such file.") from None
        except IsADirectoryError:
            raise CowdemoError(f"{path} is a folder, not an image file.") from None
        except OSError as exc:
            raise CowdemoError(f"{path} could not be read ({exc.strerror}).") from None
    else:
        data = bytes(source)
    label = name or "the upload"
    if not data:
        raise CowdemoError(f"{label} is empty (0 bytes): upload a JPEG, PNG or WebP image.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            limit = max_pixels()
            if width * height > limit:
                raise CowdemoError(
                    f"{label} is {width}x{height} = {width * height:,} pixels, over the limit of "
                    f"{limit:,}: downscale it or raise COWDEMO_MAX_IMAGE_PIXELS."
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except CowdemoError:
        raise
    except UnidentifiedImageError:
        raise CowdemoError(
            f"{label} is not an image that can be read (expected JPEG, PNG, WebP, BMP or TIFF)."
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CowdemoError(
            f"{label} is corrupt or truncated ({exc}): re-export the image."
        ) from None


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        high = arr.max() if arr.size else 0.0
        scale = 255.0 / high if high > 255 else 1.0
        gray = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.array(img.convert("RGB"))  # a writable copy: callers may draw on it


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB array (OpenCV's encoder: several times faster than Pillow's)."""
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise CowdemoError("The image could not be encoded as PNG.")
    return buffer.tobytes()


def content_hash(data: bytes) -> str:
    """sha256 hex digest of file bytes: the identity of an image in caches and datasets."""
    return hashlib.sha256(data).hexdigest()


def find_images(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted list of image files (folders searched recursively)."""
    found: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            )
        elif path.exists():
            found.append(path)
        else:
            raise CowdemoError(f"{path}: no such file or folder.")
    return found


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Save an RGB array as PNG atomically (temp file + rename)."""
    from cowdemo.files import atomic_write_bytes

    return atomic_write_bytes(path, encode_png(image))
