"""Point-in-time training sets against a brute-force computation on small random data, with
both SQL strategies (DuckDB's ASOF join and the portable window-function join)."""

import datetime as dt
import math
import random

import pandas as pd
import pytest

from mlcycle.featurestore import FeatureGroupSpec
from mlcycle.featurestore.training import BASE_TABLE, DuckDBDialect, sort_result, training_sql

SPEC = FeatureGroupSpec(name="feat", record_identifier="k", event_time="e",
                        features=[("k", "Integral"), ("e", "Fractional"), ("v", "Fractional")])
T0 = 1_709_251_200.0


def build(store, clock, seed, ttl):
    """Ingest three batches with duplicates and some deletes; return the write log."""
    rng = random.Random(seed)
    group = store.create(SPEC if ttl is None else FeatureGroupSpec(**{**SPEC.to_dict(),
                                                                       "ttl": ttl}))
    log = []
    writes = []
    for _ in range(3):
        clock.advance(10)
        pairs = {(rng.randrange(5), T0 + rng.randrange(0, 100)) for _ in range(12)}
        rows = [{"k": k, "e": e, "v": round(rng.random(), 6)} for k, e in sorted(pairs)]
        result = group.ingest(pd.DataFrame(rows))
        writes.append(result.write_time)
        log += [{**r, "w": result.write_time, "deleted": False} for r in rows]
        for _ in range(rng.randrange(3)):
            clock.advance(1)
            k, e = rng.randrange(5), T0 + rng.randrange(0, 100)
            group.delete_record(k, event_time=e)
            log.append({"k": k, "e": e, "v": None, "w": clock(), "deleted": True})
    return group, log, writes


def visible(log, *, as_of, include_deleted):
    rows = [r for r in log if as_of is None or r["w"] <= as_of]
    markers = [r for r in rows if r["deleted"]]
    out = []
    for r in rows:
        if r["deleted"]:
            continue
        if any(o["k"] == r["k"] and o["e"] == r["e"] and o["w"] > r["w"] and not o["deleted"]
               for o in rows):
            continue  # a later write of the same (record, event time)
        if not include_deleted and any(
            d["k"] == r["k"] and (d["e"], d["w"]) > (r["e"], r["w"]) for d in markers
        ):
            continue  # hidden by a delete marker
        out.append(r)
    return out


def expected_join(base, versions, ttl):
    values = []
    for k, t in zip(base["k"], base["t"], strict=True):
        seen = [v for v in versions if v["k"] == k and v["e"] <= t]
        if not seen:
            values.append(None)
            continue
        best = max(seen, key=lambda v: v["e"])
        values.append(None if ttl is not None and t - best["e"] >= ttl else best["v"])
    return values


def same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None or (isinstance(g, float) and math.isnan(g)), (got, want)
        else:
            assert g == w, (got, want)


@pytest.mark.parametrize("seed", range(6))
def test_dataframe_base_matches_brute_force(fs_store, fs_clock, seed):
    ttl = None if seed % 2 else 30.0
    _, log, writes = build(fs_store, fs_clock, seed, ttl)
    rng = random.Random(100 + seed)
    base = pd.DataFrame({"k": [rng.randrange(6) for _ in range(40)],
                         "t": [T0 + rng.randrange(-5, 120) + rng.choice([0, 0.5])
                               for _ in range(40)]})
    fs = fs_store.backend.feature_store
    for include_deleted in (False, True):
        for as_of in (None, writes[1]):
            want = expected_join(base, visible(log, as_of=as_of,
                                               include_deleted=include_deleted), ttl)
            ts = fs_store.training_set(base, event_time="t").join("feat")
            ts = ts.include_deleted(include_deleted).as_of(as_of)
            got = ts.to_dataframe()
            assert got["k"].tolist() == base["k"].tolist()
            same(got["v"].tolist(), want)
            # the portable window-function SQL (Athena's strategy) gives the same rows
            groups, columns = ts._resolve()
            sql = training_sql(ts.spec, groups=groups, base_columns=columns,
                               dialect=DuckDBDialect(asof=False))
            assert "ASOF" not in sql and "row_number()" in sql
            table = sort_result(fs.sql(sql, tables=list(groups.values()),
                                       inputs={BASE_TABLE: ts._base}))
            same(table.column("v").to_pylist(), want)


@pytest.mark.parametrize("seed", range(4))
def test_group_base_and_offline_reads_match_brute_force(fs_store, fs_clock, seed):
    group, log, _ = build(fs_store, fs_clock, seed, None)
    for include_duplicates in (False, True):
        for include_deleted in (False, True):
            if not include_duplicates:
                rows = visible(log, as_of=None, include_deleted=include_deleted)
            else:  # every write; hidden by newer markers unless include_deleted
                markers = [d for d in log if d["deleted"]]
                rows = [r for r in log if not r["deleted"] and (include_deleted or not any(
                    d["k"] == r["k"] and (d["e"], d["w"]) > (r["e"], r["w"]) for d in markers))]
            want = sorted(rows, key=lambda r: (r["e"], r["k"], r["w"]))
            ts = group.training_set().include_deleted(include_deleted)
            ts = ts.include_duplicates(include_duplicates)
            got = ts.to_dataframe()
            assert list(zip(got["k"], got["e"], got["v"], strict=True)) == [
                (r["k"], r["e"], r["v"]) for r in want
            ]
    latest = group.records(latest=True)
    versions = visible(log, as_of=None, include_deleted=False)
    want = {}
    for v in versions:
        if v["k"] not in want or v["e"] > want[v["k"]]["e"]:
            want[v["k"]] = v
    assert sorted(zip(latest["k"], latest["v"], strict=True)) == sorted(
        (k, v["v"]) for k, v in want.items())


@pytest.mark.parametrize("seed", range(7, 11))
def test_online_store_agrees_with_the_latest_offline_versions(fs_store, fs_clock, seed):
    group, _, _ = build(fs_store, fs_clock, seed, None)
    latest = group.records(latest=True)
    online = group.batch_get_record(range(5))
    by_key = dict(zip(latest["k"], latest["v"], strict=True))
    for k, record in enumerate(online):
        # a delete marker newer than every version removes the record online too
        assert (record["v"] if record else None) == by_key.get(k)


def test_as_of_before_anything_was_written_sees_nothing(fs_store, fs_clock):
    build(fs_store, fs_clock, 3, None)
    base = pd.DataFrame({"k": [0, 1], "t": [T0 + 200, T0 + 200]})
    early = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    got = fs_store.training_set(base, event_time="t").join("feat").as_of(early)
    assert got.to_dataframe()["v"].isna().all()
