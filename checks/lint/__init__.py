"""`lint.*`: rules over the candidate's dbt project, each a small function over the
dbt-project engine (checks/dbt_project.py), one file per family. Importing this package
registers them. Every finding points at the candidate's own file and line, never only at
target/compiled."""

from checks.lint import analysis, documentation, incremental, layering, payments, testing, timezones

__all__ = ["analysis", "documentation", "incremental", "layering", "payments", "testing", "timezones"]
