"""Files the grader reads besides its code: the rubric, the exercise as handed out, and the
reference solutions. They live at the repository's top (rubric.yaml, environment/,
calibration/); grader/data links to them, and building the package copies their content in,
so an installed grader (`pip install .`) finds them wherever it runs."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
RUBRIC_PATH = (DATA_DIR / "rubric.yaml").resolve()
HANDOUT_DIR = (DATA_DIR / "environment").resolve()
CALIBRATION_DIR = (DATA_DIR / "calibration").resolve()
# The handout's source-database dump (environment/postgres): data for the exercise's stack,
# never copied into a reference workspace nor compared with a candidate's files.
HANDOUT_DATA_DIRS = frozenset({"postgres"})
