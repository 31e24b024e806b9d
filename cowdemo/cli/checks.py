"""Argument checks the subcommands share: argparse types (an error there is argparse's one line
and exit 2) and checks of a value against what was loaded."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

from cowdemo.errors import CowdemoError


def fraction(text: str) -> float:
    """A threshold between 0 and 1 (scores, IoU): -1, 5 or nan are errors, not silent."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def known_classes(wanted: Sequence[str] | None, model_classes: Sequence[str],
                  model: str) -> None:
    """Every class asked for (``--classes``) is one the model can find."""
    unknown = [c for c in wanted or () if c not in model_classes]
    if unknown:
        shown = ", ".join(list(model_classes)[:12]) + (", ..." if len(model_classes) > 12 else "")
        raise CowdemoError(
            f"--classes {', '.join(unknown)}: not a class of {model} (it finds {shown})."
        )


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """An output folder that may exist, but not as a file (never written over)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CowdemoError(
            f"{option} {path} is a file, not a folder: give a folder (the file is left as it is)."
        )
    return path
