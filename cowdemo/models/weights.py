"""Finding weights: explicit path → checkpoints/ → torch's cache → download → one clear error.

Downloads happen only when a network exists; offline (or with ``COWDEMO_OFFLINE=1``) the error
names the file, where to put it and where to get it.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from cowdemo.errors import CowdemoError

REPO_ROOT = Path(__file__).resolve().parents[2]


def checkpoints_dir() -> Path:
    """Where models are found and fine-tunes saved (COWDEMO_CHECKPOINTS overrides)."""
    return Path(os.environ.get("COWDEMO_CHECKPOINTS", REPO_ROOT / "checkpoints"))


def torch_cache_dir() -> Path:
    """Where torch.hub keeps downloaded weights ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    return os.environ.get("COWDEMO_OFFLINE", "").lower() in ("1", "true", "yes")


def missing_weights_message(model: str, filename: str, url: str, folder: Path) -> str:
    return (
        f"Weights for {model} not found: put {filename} in {folder} "
        f"(or {torch_cache_dir()}); get it from {url}"
    )


def resolve_weights(
    model: str,
    url: str,
    explicit: str | Path | None = None,
    folder: Path | None = None,
    allow_download: bool | None = None,
) -> Path:
    """Return a local path to the weights file of ``model`` named by ``url``'s last part."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise CowdemoError(f"Weights file {path} for {model} does not exist.")
        return path
    filename = Path(urlparse(url).path).name
    folder = folder or checkpoints_dir()
    for candidate in (folder / filename, torch_cache_dir() / filename):
        if candidate.is_file():
            return candidate
    if allow_download is None:
        allow_download = not offline() and _network_reachable(url)
    if allow_download:
        # torchvision names files "<name>-<sha256 prefix>.pth": the download is checked against it
        match = re.search(r"-([0-9a-f]{8,})\.\w+$", filename)
        torch_cache_dir().mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(
                url, str(torch_cache_dir() / filename), match.group(1) if match else None,
                progress=True,
            )
        except Exception as exc:  # network errors come in many types
            raise CowdemoError(
                f"Download of {url} failed ({exc}). "
                + missing_weights_message(model, filename, url, folder)
            ) from None
        return torch_cache_dir() / filename
    raise CowdemoError(missing_weights_message(model, filename, url, folder))


def _network_reachable(url: str, timeout: float = 3.0) -> bool:
    host = urlparse(url).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_state_dict(path: Path, what: str) -> dict:
    """``torch.load(weights_only=True)`` with one clear error for corrupt or foreign files."""
    from cowdemo.files import require_regular_file

    require_regular_file(path, f"{what} checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CowdemoError(f"{path}: no such weights file.") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if first.startswith("Weights only load failed"):
            # torch's long explanation: keep the line that says what it met
            lines = [ln.strip() for ln in str(exc).splitlines()]
            first = next((ln for ln in lines if ln.startswith(("WeightsUnpickler error",
                                                                "Unsupported"))),
                         "not plain tensors")
        raise CowdemoError(
            f"{path} is not a loadable {what} checkpoint ({first[:160]}): it may be corrupt, "
            "truncated or saved with pickled code; only plain tensors load (weights_only)."
        ) from None
    if not isinstance(data, dict):
        raise CowdemoError(f"{path} does not hold a state dict for {what}.")
    return data
