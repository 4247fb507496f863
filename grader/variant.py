"""dbt.generalises's build, on a second engine beside the other rebuilding passes.

The variant dataset's build (`dbt build --full-refresh` on other ids and values) depends on
nothing the other passes leave behind: it starts from empty datasets. So it runs on an engine
of its own, with a dbt worker of its own, in a thread started with the rebuilding stage. A
pass keeps about one core busy (dbt and the engine mostly take turns), so on two cores the
variant build runs beside the idempotency and mutation passes instead of after them.

Both are jailed and limited exactly as the first engine and worker are; the variant's raw
tables come from grader.raw_cache like the canonical ones. The check still decides alone:
`outcome()` hands it the dataset, the build and a client of the engine holding its marts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from checks.passes import VariantOutcome
from checks.registry import CheckSkipped
from grader.dataset.generator import generate
from grader.dbt_run import PARSE_STATE, DbtSession, private_paths, rerun
from grader.sandbox import Limits


class SideEngineVariant:
    """The variant build in the background: `start()`, then `outcome()` (waits), then `close()`."""

    def __init__(self, *, seed: int, scale: str, project_dir: Path, snapshot_root: Path, first_work_dir: Path,
                 work_dir: Path, limits: Limits, budget: Callable[[], float], open_engine: Callable[..., Any],
                 raw_layer: Callable[[int, Path], Any], progress: Callable[[str], None]) -> None:
        self.seed, self.scale = seed, scale
        self.project_dir, self.snapshot_root = project_dir, snapshot_root
        self.first_work_dir, self.work_dir = first_work_dir, work_dir
        self.limits, self.budget = limits, budget
        self.open_engine, self.raw_layer, self.progress = open_engine, raw_layer, progress
        self._future: Future[VariantOutcome] = Future()
        self._lock = threading.Lock()
        self._closed = False
        self._engine: Any = None
        self._session: DbtSession | None = None
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, name="variant-build", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def outcome(self) -> VariantOutcome:
        """The variant's dataset, build and engine client; what the build raised, raised here."""
        return self._future.result()

    def close(self) -> None:
        """Stop the worker and the engine, whatever the thread is doing; then wait for it."""
        with self._lock:
            self._closed = True
            session, engine = self._session, self._engine
        if session is not None:
            session.close()
        self._release.set()
        self._thread.join(timeout=30)
        if engine is not None:
            engine.stop()

    def _run(self) -> None:
        try:
            self._future.set_result(self._build())
        except BaseException as exc:  # noqa: BLE001 — handed to the check through outcome()
            self._future.set_exception(exc)
        # The engine and the worker die with the thread that started them (their parent-death
        # signal follows the thread, not the process): this one lives until close().
        self._release.wait()

    def _build(self) -> VariantOutcome:
        variant = generate(self.seed, self.scale)
        raw = self.raw_layer(self.seed, self.work_dir / "emulator")
        engine = raw.open(self.open_engine)
        if not self._keep(engine=engine):
            raise CheckSkipped("the grading ended before the variant build")
        raw.load(engine, variant)
        session = DbtSession(self.project_dir, self.work_dir / "dbt", engine.endpoint,
                             readable_root=self.snapshot_root, limits=self.limits)
        if not self._keep(session=session):
            raise CheckSkipped("the grading ended before the variant build")
        budget = self.budget()
        if budget < 1:
            raise CheckSkipped("the grading's time limit (--time-limit) was spent before the variant rebuild")
        self.progress(f"dbt.generalises: variant dataset (seed {self.seed}) building on a second engine")
        run = rerun(self.project_dir, engine.endpoint, session.work_dir, ["build", "--full-refresh"], budget,
                    "variant", readable_root=self.snapshot_root, limits=self.limits, session=session,
                    parse_state=private_paths(self.first_work_dir)["target"] / PARSE_STATE)  # the same project
        if run.timed_out:
            engine.interrupt()
        return VariantOutcome(variant, run, engine.client())

    def _keep(self, engine: Any = None, session: DbtSession | None = None) -> bool:
        """Register what the thread started, so close() stops it; False (and stopped) once closed."""
        with self._lock:
            if not self._closed:
                self._engine = engine or self._engine
                self._session = session or self._session
                return True
        if session is not None:
            session.close()
        if engine is not None:
            engine.stop()
        return False
