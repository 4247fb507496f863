"""Reading marts: a warehouse that stops answering is the grader's fault, never the candidate's fail."""

from __future__ import annotations

import pytest

import checks.results  # noqa: F401  (registers the result checks)
from checks.marts import ResultContext
from checks.registry import REGISTRY, run_check
from grader.dataset.generator import CANONICAL_SEED, generate
from raw_layer.schema import RAW_DATASET, RAW_PROJECT
from grader.loading import load_raw
from grader.pipeline import CACHE_DIR
from grader.warehouse import EmbeddedEmulator


def _manifest_of_raw_tables(models: dict[str, str]) -> dict:
    """A manifest whose marts are raw tables: they exist, in the wrong shape for the contract."""
    return {"metadata": {"project_name": "p"},
            "nodes": {f"model.p.{mart}": {"resource_type": "model", "name": mart, "unique_id": f"model.p.{mart}",
                                          "database": RAW_PROJECT, "schema": RAW_DATASET, "alias": table}
                      for mart, table in models.items()}}


@pytest.mark.slow
def test_a_warehouse_stopped_mid_grading_is_a_grader_fault_not_a_fail(tmp_path):
    dataset = generate(CANONICAL_SEED, "small")
    manifest = _manifest_of_raw_tables({"fct_payments": "payments", "dim_users": "users"})
    ids = ("payments.dedup", "users.soft_deletes")
    with EmbeddedEmulator(CACHE_DIR, run_dir=tmp_path / "emulator") as warehouse:
        client = warehouse.client()
        load_raw(client, dataset)
        ctx = ResultContext(client, manifest, dataset.truth, retry_s=3.0)
        alive = {i: run_check(REGISTRY[i], ctx) for i in ids}
        warehouse.stop()
        gone = {i: run_check(REGISTRY[i], ResultContext(client, manifest, dataset.truth, retry_s=3.0)) for i in ids}
    for check_id in ids:
        # Alive, the warehouse answers about the candidate's (wrongly shaped) marts: a fail.
        assert alive[check_id].status == "fail", alive[check_id].message
        # Gone, nothing was learnt about the candidate: an error that names the grader.
        assert gone[check_id].status == "error", gone[check_id].message
        assert gone[check_id].evidence["fault"] == "grader", gone[check_id].evidence
        assert "warehouse did not answer" in gone[check_id].message
