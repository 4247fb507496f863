"""The raw layer as cached engine files (grader.raw_cache): a second engine started on a copy of
the first one's files holds the same raw tables, row for row, without loading them."""

from __future__ import annotations

from pathlib import Path

import pytest
from raw_layer.bigquery import query

from grader.dataset.generator import CANONICAL_SEED, generate
from grader.raw_cache import RawCache, RawLayer, cache_key
from grader.warehouse import EmbeddedEmulator

pytestmark = pytest.mark.slow


def test_the_key_follows_seed_and_scale() -> None:
    assert cache_key(1, "small") == cache_key(1, "small")
    assert len({cache_key(1, "small"), cache_key(2, "small"), cache_key(1, "default")}) == 3


def test_a_second_engine_starts_on_the_first_ones_raw_tables(tmp_path: Path) -> None:
    dataset = generate(CANONICAL_SEED, "small")
    cache = RawCache(tmp_path / "cache", CANONICAL_SEED, "small")
    counts = []
    for run in ("first", "second"):
        raw = RawLayer(cache, tmp_path / run / "data")
        warehouse = raw.open(lambda data_dir, run=run: EmbeddedEmulator(
            tmp_path / "engine-home", tmp_path / f"{run}.log", run_dir=tmp_path / run, data_dir=data_dir))
        with warehouse:
            raw.load(warehouse, dataset)
            assert raw.cached == (run == "second")
            counts.append({name: query(warehouse.client(), f"select count(*) as n from raw.{name}")[0]["n"]
                           for name in dataset.rows})
            if run == "second":  # candidate code writes to its own copy, never to the cache
                query(warehouse.client(), "delete from raw.orders where true")
    assert counts[0] == counts[1] == {name: len(rows) for name, rows in dataset.rows.items()}
    assert RawCache(tmp_path / "cache", CANONICAL_SEED, "small").restore(tmp_path / "third")
    with EmbeddedEmulator(tmp_path / "engine-home", tmp_path / "third.log", run_dir=tmp_path,
                          data_dir=tmp_path / "third") as warehouse:
        assert query(warehouse.client(), "select count(*) as n from raw.orders")[0]["n"] == len(dataset.rows["orders"])


def test_a_cache_the_engine_cannot_open_is_dropped_and_the_tables_loaded(tmp_path: Path) -> None:
    dataset = generate(CANONICAL_SEED, "small")
    cache = RawCache(tmp_path / "cache", CANONICAL_SEED, "small")
    (cache.entry / "data").mkdir(parents=True)
    (cache.entry / "data" / "bqemulator.duckdb").write_bytes(b"not a database" * 100)
    (cache.entry / "complete").write_text("")
    raw = RawLayer(cache, tmp_path / "run" / "data")
    with raw.open(lambda data_dir: EmbeddedEmulator(tmp_path / "engine-home", tmp_path / "run.log",
                                                    run_dir=tmp_path / "run", data_dir=data_dir)) as warehouse:
        assert not raw.cached
        raw.load(warehouse, dataset)
        assert query(warehouse.client(), "select count(*) as n from raw.orders")[0]["n"] == len(dataset.rows["orders"])
    assert (cache.entry / "complete").is_file()  # stored again, from the good load
