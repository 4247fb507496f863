"""The raw tables of a dataset kept as the embedded engine's own database files.

Loading the raw layer costs seconds (4 s at the default scale: serialising every row, then the
engine's load jobs), and every grading of the same seed and scale loads the same rows. The first
grading keeps the engine's database files, taken right after the load and before any candidate
code has run; later ones start their engine on a copy of them (10 ms).

An entry is keyed by everything that decides those files: seed and scale, the source of the
dataset generator, of the raw layer and of the loader, and the engine's versions. A change to
any of them makes a new entry; the oldest are pruned.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.dataset.generator import Dataset
    from grader.warehouse import Warehouse

KEPT_ENTRIES = 8
COMPLETE = "complete"  # written last: an entry without it is ignored
_SOURCES = ("grader.dataset", "raw_layer", "exercise_warehouse", "grader.loading", "grader.warehouse")
_VERSIONS = ("bqemulator", "duckdb", "sqlglot")


@dataclass(frozen=True)
class RawCache:
    """Cached engine files for one seed and scale under `root`."""

    root: Path
    seed: int
    scale: str

    @property
    def entry(self) -> Path:
        return self.root / cache_key(self.seed, self.scale)

    def restore(self, data_dir: Path) -> bool:
        """Copy the cached files into `data_dir` (empty or absent); False when there are none."""
        if not (self.entry / COMPLETE).is_file():
            return False
        shutil.copytree(self.entry / "data", data_dir, dirs_exist_ok=True)
        return True

    def store(self, data_dir: Path) -> None:
        """Keep a copy of `data_dir`, which must hold the raw tables just loaded and nothing else
        (no candidate code may have run on this engine yet). Concurrent gradings may both store:
        the first complete entry stays."""
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.entry / COMPLETE).is_file():
            return
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        try:
            shutil.copytree(data_dir, staging / "data")
            (staging / COMPLETE).write_text(f"seed {self.seed}, scale {self.scale}\n", encoding="utf-8")
            shutil.rmtree(self.entry, ignore_errors=True)  # an incomplete one left by an interrupted store
            os.rename(staging, self.entry)
        except OSError:
            pass  # another grading stored it first, or the disk is full: the next grading loads again
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._prune()

    def _prune(self) -> None:
        entries = sorted((p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEPT_ENTRIES:]:
            shutil.rmtree(old, ignore_errors=True)


def cache_key(seed: int, scale: str) -> str:
    """A digest of the seed, the scale, the sources that produce the rows and load them, and the
    engine's versions."""
    digest = hashlib.sha256(f"seed={seed} scale={scale}\n".encode())
    for name in _SOURCES:
        for path in _source_files(name):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for dist in _VERSIONS:
        try:
            digest.update(f"{dist}={importlib.metadata.version(dist)}\n".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{dist}=absent\n".encode())
    return digest.hexdigest()[:24]


def _source_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0])
        return sorted(folder.rglob("*.py"))
    return [Path(spec.origin)] if spec.origin else []


class RawLayer:
    """Where a grading's raw tables come from: the embedded engine starts on this cache's files
    when it has them for the seed and scale, else they are loaded (and the files kept for the next
    grading). `RawLayer(None, None)`: a warehouse the grader does not start, which always loads."""

    def __init__(self, cache: RawCache | None, data_dir: Path | None) -> None:
        self.cache, self.data_dir = cache, data_dir
        self.cached = False

    @classmethod
    def for_seed(cls, root: Path, seed: int, scale: str, run_dir: Path) -> RawLayer:
        """The embedded engine's raw layer for a dataset (`run_dir`: the engine's run folder)."""
        return cls(RawCache(root, seed, scale), run_dir / "data")

    def open(self, start: Callable[[Path | None], Warehouse]) -> Warehouse:
        """Start the warehouse on the cached files if any; on a cache the engine refuses, fresh."""
        from grader.warehouse import WarehouseError

        if self.cache is None or self.data_dir is None:
            return start(None)
        self.cached = self.cache.restore(self.data_dir)
        try:
            return start(self.data_dir)
        except WarehouseError:
            if not self.cached:
                raise
            shutil.rmtree(self.cache.entry, ignore_errors=True)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.cached = False
            return start(self.data_dir)

    def load(self, warehouse: Warehouse, dataset: Dataset) -> None:
        """The raw tables in the warehouse: nothing to do when it started on cached files."""
        from grader.loading import load_raw

        if self.cached:
            return
        load_raw(warehouse.client(), dataset)
        if self.cache is not None and self.data_dir is not None:
            self.cache.store(self.data_dir)  # before any candidate code runs on this engine
