"""File helpers every module shares: atomic writes (temp file in the same folder, fsync, rename:
a crash never leaves half a file) and JSON reading with one clear error."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from cowdemo.errors import CowdemoError


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temp file in ``path``'s folder, fsync, then rename it onto
    ``path``: the previous file stays whole until the new one is complete, whatever happens in
    between (a full disk included). OSError is raised as is (callers read its errno)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; the folder is created if needed."""
    try:
        return atomic_write_with(path, lambda handle: handle.write(data))
    except OSError as exc:
        raise CowdemoError(f"Could not write {path} ({exc.strerror or exc}).") from None


def replace_dir(stage: str | Path, dest: str | Path) -> Path:
    """Put the finished folder ``stage`` at ``dest`` (same file system), replacing what is
    there: the old folder is renamed aside first and deleted only once the new one is in."""
    stage, dest = Path(stage), Path(dest)
    if dest.exists():
        trash = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(dest, trash)
        os.replace(stage, dest)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(stage, dest)
    return dest


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    return atomic_write_bytes(path, json.dumps(data, indent=indent).encode("utf-8"))


#: The largest JSON file read (COCO's instances_train2017.json is 0.45 GB); larger ones are
#: refused before reading (COWDEMO_MAX_JSON_BYTES overrides).
MAX_JSON_BYTES = 2 * 1024**3


def require_regular_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a regular file (symlinks followed), else a one-line CowdemoError: a
    FIFO, socket or device would block or never end when read, a folder is not a file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CowdemoError(f"{path}: no such file.") from None
    except OSError as exc:
        raise CowdemoError(f"{path} could not be read ({exc.strerror or exc}).") from None
    if stat.S_ISDIR(mode):
        raise CowdemoError(f"{path} is a folder, not a {what}.")
    if not stat.S_ISREG(mode):
        raise CowdemoError(
            f"{path} is not a regular file (a pipe, socket or device): give a {what}."
        )
    return path


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parsed JSON, or a one-line CowdemoError naming the file and what is wrong with it (not
    a regular file, too large, not UTF-8 or JSON, nested too deeply to parse)."""
    path = require_regular_file(path, what)
    limit = int(os.environ.get("COWDEMO_MAX_JSON_BYTES", MAX_JSON_BYTES))
    size = path.stat().st_size
    if size > limit:
        raise CowdemoError(
            f"{path} is too large for a {what} ({size / 1024**3:.1f} GB; the limit is "
            f"{limit / 1024**3:.1f} GB, COWDEMO_MAX_JSON_BYTES raises it)."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CowdemoError(f"{path} is not valid JSON ({exc}).") from None
    except RecursionError:
        raise CowdemoError(f"{path} is nested too deeply to be a {what}.") from None
    except OSError as exc:
        raise CowdemoError(f"{path} could not be read ({exc.strerror or exc}).") from None
