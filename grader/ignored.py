"""The one list of a workspace's folders that are not the candidate's work. Its own module,
free of imports, because the static analysis worker reads it under a memory cap."""

from __future__ import annotations

# Tools' environments, caches and editor settings: regenerated, heavy, never what the
# candidate wrote. The snapshot does not copy them (directories and symlinks alike: a
# symlinked .venv is not looked into; .git, directory or gitfile, at any depth: history
# is read separately) and no check searches them.
TOOLING_DIRS = frozenset({".git", ".venv", "venv", "env", ".tox", "node_modules", "__pycache__", "site-packages",
                          ".pytest_cache", ".mypy_cache", ".ruff_cache", ".idea", ".vscode"})
# dbt's default target-path and log-path; the snapshot skips them only next to a
# dbt_project.yml so that a candidate's own folder called "logs" elsewhere is still copied.
DBT_OUTPUT_DIRS = frozenset({"target", "logs"})
# Installed dbt packages: copied (the build needs them offline), but not the candidate's models.
DBT_PACKAGE_DIRS = frozenset({"dbt_packages", "dbt_modules"})
# What no check searches for models, DAGs or docs: all of the above, and grading reports.
IGNORED_DIRS = TOOLING_DIRS | DBT_OUTPUT_DIRS | DBT_PACKAGE_DIRS | frozenset({"reports"})
