"""Test helpers: ../shared beside the checkout (skipped with a reason where absent) and the real
cow photo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COWDEMO_SHARED", REPO.parent / "shared"))


def shared_path(relative: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is missing."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's ../shared reference data")
    return path


#: A real photo of a cow (1140x760, "Photo by freestocks.org from Pexels") that Debian's
#: r-cran-cowplot package ships as example data. `scripts/setup.sh --test` unpacks that package
#: (without R) into .cache/test-assets; an installed package or COWDEMO_COW_PHOTO work too.
COW_PHOTO_CANDIDATES = (
    REPO / ".cache/test-assets/cowplot/usr/lib/R/site-library/cowplot/extdata/cow.jpg",
    Path("/usr/lib/R/site-library/cowplot/extdata/cow.jpg"),
)


def cow_photo_path() -> Path:
    """The real cow photo, or skip naming how to get it."""
    env = os.environ.get("COWDEMO_COW_PHOTO")
    for path in ([Path(env)] if env else []) + list(COW_PHOTO_CANDIDATES):
        if path.is_file():
            return path
    pytest.skip(
        "the real cow photo is absent: `scripts/setup.sh --test` unpacks it from Debian's "
        "r-cran-cowplot package (or apt-get install --no-install-recommends r-cran-cowplot)"
    )


def open_page(page: str, timeout: float = 120):
    """A real AppTest run of app.py switched to ``page`` (e.g. "views/track.py"), checked to
    have run without an exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
