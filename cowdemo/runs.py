"""The run history: every evaluation, training and tracking run with what produced it.

One store for all of them, SQLite by default (``data/runs.sqlite``, WAL mode, so several app
sessions and CLI processes can write at once) through SQLAlchemy, so a PostgreSQL URL works too
(``COWDEMO_RUNS_DB=postgresql://...``)::

    store = RunStore()
    run_id = store.record("evaluation", model="frcnn-r50-fpn-coco", metrics={"AP": 0.129}, ...)
    store.list(kind="evaluation", dataset="cows")
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cowdemo.errors import CowdemoError

KINDS = ("evaluation", "training", "tracking")
REPO_ROOT = Path(__file__).resolve().parents[1]


class _Base(DeclarativeBase):
    pass


class _RunRow(_Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    created_at: Mapped[float] = mapped_column(sa.Float, index=True)
    code_version: Mapped[str] = mapped_column(sa.String(64), default="")
    model: Mapped[str] = mapped_column(sa.String(255), index=True)
    weights_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    dataset: Mapped[str] = mapped_column(sa.String(255), default="", index=True)
    dataset_hash: Mapped[str] = mapped_column(sa.String(64), default="")
    settings_json: Mapped[str] = mapped_column(sa.Text, default="{}")
    settings_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    metrics_json: Mapped[str] = mapped_column(sa.Text, default="{}")
    device: Mapped[str] = mapped_column(sa.String(64), default="")
    duration_s: Mapped[float] = mapped_column(sa.Float, default=0.0)


class _DetailsRow(_Base):
    """Per-image or per-frame details, kept apart so listing runs stays fast."""

    __tablename__ = "run_details"
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), primary_key=True)
    details_json: Mapped[str] = mapped_column(sa.Text)


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    created_at: float
    code_version: str
    model: str
    weights_sha256: str
    dataset: str
    dataset_hash: str
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    device: str = ""
    duration_s: float = 0.0

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created_at))


def default_url() -> str:
    if os.environ.get("COWDEMO_RUNS_DB"):
        return os.environ["COWDEMO_RUNS_DB"]
    from cowdemo.datasets.store import data_dir

    return f"sqlite:///{data_dir() / 'runs.sqlite'}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The git commit of the code that ran ("" outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path | None) -> str:
    """sha256 of a weights file, computed once per (path, mtime, size)."""
    if not path or not Path(path).is_file():
        return ""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def _enable_sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class RunStore:
    """Runs in a database; safe for many writers (each record is one transaction)."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        try:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True,
                                                                       exist_ok=True)
            self.engine = sa.create_engine(self.url, connect_args=self._connect_args())
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _enable_sqlite_wal)
            _Base.metadata.create_all(self.engine)
        except sa.exc.ArgumentError as exc:
            raise CowdemoError(
                f"Run database {self.url!r} is not a database URL ({exc}): use e.g. "
                "sqlite:///data/runs.sqlite or postgresql://user@host/db."
            ) from None
        except ModuleNotFoundError as exc:
            raise CowdemoError(
                f"Run database {self.url}: its driver is not installed ({exc.name}); "
                "SQLite works out of the box, PostgreSQL needs psycopg."
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise CowdemoError(f"Run database {self.url} cannot be opened ({reason}).") from None
        except OSError as exc:
            raise CowdemoError(
                f"Run database {self.url} cannot be opened ({exc.strerror or exc})."
            ) from None

    def _connect_args(self) -> dict[str, Any]:
        return {"timeout": 30} if self.url.startswith("sqlite") else {}

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    def record(
        self,
        kind: str,
        model: str,
        metrics: dict[str, float],
        *,
        weights_sha256: str = "",
        dataset: str = "",
        dataset_hash: str = "",
        settings: dict[str, Any] | None = None,
        details: Any = None,
        device: str = "",
        duration_s: float = 0.0,
        created_at: float | None = None,
    ) -> int:
        """Store one run and return its id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        settings = dict(settings or {})
        row = _RunRow(
            kind=kind,
            created_at=time.time() if created_at is None else created_at,
            code_version=code_version(),
            model=model,
            weights_sha256=weights_sha256,
            dataset=dataset,
            dataset_hash=dataset_hash,
            settings_json=canonical_json(settings),
            settings_key=settings_key(settings),
            metrics_json=canonical_json(metrics),
            device=device,
            duration_s=float(duration_s),
        )
        with self._session() as session:
            session.add(row)
            session.flush()
            if details is not None:
                session.add(_DetailsRow(run_id=row.id, details_json=canonical_json(details)))
            return int(row.id)

    @staticmethod
    def _to_run(row: _RunRow) -> Run:
        return Run(
            id=row.id,
            kind=row.kind,
            created_at=row.created_at,
            code_version=row.code_version,
            model=row.model,
            weights_sha256=row.weights_sha256,
            dataset=row.dataset,
            dataset_hash=row.dataset_hash,
            settings=json.loads(row.settings_json),
            metrics=json.loads(row.metrics_json),
            device=row.device,
            duration_s=row.duration_s,
        )

    def list(
        self,
        kind: str | None = None,
        model: str | None = None,
        dataset: str | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs, oldest first, filtered by whatever is given."""
        query = sa.select(_RunRow).order_by(_RunRow.created_at, _RunRow.id)
        for column, value in ((_RunRow.kind, kind), (_RunRow.model, model),
                              (_RunRow.dataset, dataset)):
            if value is not None:
                query = query.where(column == value)
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as session:
            return [self._to_run(row) for row in session.scalars(query)]

    def get(self, run_id: int) -> Run:
        with Session(self.engine) as session:
            row = session.get(_RunRow, int(run_id))
            if row is None:
                raise CowdemoError(f"There is no run {run_id} in {self.url}.")
            return self._to_run(row)

    def details(self, run_id: int) -> Any:
        with Session(self.engine) as session:
            row = session.get(_DetailsRow, int(run_id))
            return None if row is None else json.loads(row.details_json)

    def update_details(self, run_id: int, updates: dict[str, Any]) -> None:
        """Merge ``updates`` into a run's details (one level deep: a dict value is merged into
        the dict stored under its key), in one transaction."""
        with self._session() as session:
            row = session.get(_DetailsRow, int(run_id))
            details = {} if row is None else json.loads(row.details_json)
            for key, value in updates.items():
                old = details.get(key)
                details[key] = {**old, **value} if isinstance(old, dict) and isinstance(
                    value, dict) else value
            text = canonical_json(details)
            if row is None:
                session.add(_DetailsRow(run_id=int(run_id), details_json=text))
            else:
                row.details_json = text

    def find(
        self,
        kind: str,
        model: str,
        weights_sha256: str,
        dataset_hash: str,
        settings: dict[str, Any],
    ) -> Run | None:
        """The newest run with exactly these inputs (a cache hit), or None."""
        query = (
            sa.select(_RunRow)
            .where(_RunRow.kind == kind, _RunRow.model == model,
                   _RunRow.weights_sha256 == weights_sha256,
                   _RunRow.dataset_hash == dataset_hash,
                   _RunRow.settings_key == settings_key(settings))
            .order_by(_RunRow.created_at.desc(), _RunRow.id.desc())
            .limit(1)
        )  # fmt: skip
        with Session(self.engine) as session:
            row = session.scalars(query).first()
            return None if row is None else self._to_run(row)

    def count(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(_RunRow)))
