"""The app's sample pictures: a real cow photo when this machine has one, then seeded synthetic
pasture scenes (always there, the same pixels everywhere)::

    photo = cow_photo()          # Path or None
    files = sample_images()      # [(name, bytes)]: the photo first when present, then 3 scenes

Why a real photo: COCO-pretrained detectors were trained on photos; on the synthetic cartoon cows
they often see nothing above the default threshold, which tells a new user nothing. The photo
("Photo by freestocks.org from Pexels", 1140x760) is example data of Debian's ``r-cran-cowplot``
package; ``scripts/setup.sh`` unpacks that package (without R) into ``.cache/test-assets``. It is
never committed: without it the samples are the synthetic scenes alone.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where set-up unpacks the photo, then where an installed r-cran-cowplot keeps it.
COW_PHOTO_CANDIDATES: tuple[Path, ...] = (
    REPO_ROOT / ".cache/test-assets/cowplot/usr/lib/R/site-library/cowplot/extdata/cow.jpg",
    Path("/usr/lib/R/site-library/cowplot/extdata/cow.jpg"),
)
COW_PHOTO_NAME = "cow-photo.jpg"
COW_PHOTO_CREDIT = "Photo by freestocks.org from Pexels, shipped by Debian's r-cran-cowplot"
SYNTHETIC_SAMPLES = 3


def cow_photo() -> Path | None:
    """The real cow photo, or None. ``COWDEMO_COW_PHOTO`` names another file (a missing one
    means no photo); otherwise the places set-up and Debian put it are tried."""
    env = os.environ.get("COWDEMO_COW_PHOTO")
    candidates = [Path(env)] if env else list(COW_PHOTO_CANDIDATES)
    return next((path for path in candidates if path.is_file()), None)


def sample_images(n_synthetic: int = SYNTHETIC_SAMPLES) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the sample pictures: the real photo first when present, then
    ``n_synthetic`` synthetic scenes (``make_scene(seed=0..n-1)``) as PNG."""
    from cowdemo.datasets.synthetic import make_scene
    from cowdemo.images import encode_png

    photo = cow_photo()
    files = [(COW_PHOTO_NAME, photo.read_bytes())] if photo else []
    files += [(f"sample-{i + 1}.png", encode_png(make_scene(seed=i).image))
              for i in range(n_synthetic)]
    return files
