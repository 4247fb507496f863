"""The exercise's warehouse engine: bqemulator with our changes applied at start.

One source for the live stack's warehouse service (its image installs this folder) and for
the grader, which embeds the same package: the candidate builds on the engine that grades
them. Changes are applied by patching bqemulator at start (`launcher.apply`), never by
forking it:

* `lockdown`: the DuckDB connection loses access to the host once its extensions are loaded,
  and statements that would touch the host are refused with a BigQuery-style error.
* `translation`: BigQuery SQL translation fixes (sqlglot level) where bqemulator differs
  from BigQuery.
"""

__version__ = "0.1.0"
