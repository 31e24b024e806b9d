"""Which device runs the models: CUDA when present, otherwise CPU (always works)."""

from __future__ import annotations

import torch

from cowdemo.errors import CowdemoError


def resolve_device(preference: str = "auto") -> str:
    """"auto" → "cuda:0" when a GPU is usable, else "cpu"; "cpu" / "cuda" / "cuda:N" as asked."""
    preference = (preference or "auto").lower()
    if preference == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if preference == "cpu":
        return "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CowdemoError(
                f"Device {preference} was asked for but no CUDA GPU is available: use --device cpu."
            )
        return preference if ":" in preference else "cuda:0"
    raise CowdemoError(f"Unknown device {preference!r}: use auto, cpu or cuda[:N].")


def describe_device(device: str) -> str:
    """A human line: "cuda:0 (NVIDIA H100, 80 GB)" or "cpu (4 threads)"."""
    if device.startswith("cuda") and torch.cuda.is_available():
        index = int(device.split(":")[1]) if ":" in device else 0
        props = torch.cuda.get_device_properties(index)
        return f"{device} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    return f"cpu ({torch.get_num_threads()} threads)"
