"""The nightly catch-up at farm scale: N registered partitions, most with current crops.

Run from the repository root (under ``flock /tmp/vitcow-heavy.lock``)::

    python -m benchmarks.catchup_scale --partitions 1000,5000 --work /tmp/catchup

For each N, a storage root holds N registered videos (``vitcow_testbed.synthetic_registry``,
registry records only) and a Dagster instance on disk (SQLite, ``DAGSTER_HOME`` under the
work folder) N partitions, a ``raw_video`` materialization of each (its data version the
registered sha256) and an ``object_crops`` materialization of all but every
``MISSING_EVERY``-th (recording the sha256 they were made from): the crops of N /
``MISSING_EVERY`` partitions are missing. The landing folder is empty. Then the real
``nightly_catchup`` is evaluated as the daemon evaluates a schedule (``evaluate_tick`` with
the code location), ``EVALUATIONS`` times: ``first_s`` (the first evaluation over this
instance), ``steady_s`` (the slowest of the others), ``requested`` (run requests of the
first). Of each evaluation about ``LOOK_GAP_S`` (1 s) is the catch-up's wait between its two
looks at the landing folders, whatever N.

Baseline in the same run: ``per_partition_fetch_s``, one ``fetch_materializations`` of one
partition's latest crops (what the catch-up did per partition before), the median of 50;
``steady_vs_fetches`` is the steady evaluation over N such fetches.

With ``--work`` an instance populated once is reused by later runs (the code before this
benchmark's change can then be timed on the same instance: put it first on ``PYTHONPATH``
and run from another folder). The last line is ``key=value``.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

MISSING_EVERY = 10
EVALUATIONS = 3
FETCHES = 50


def populate(home: Path, dagster_home: Path, count: int) -> None:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from vitcow_assets.footage.layout import StorageRoot
    from vitcow_assets.footage.registry import Registry
    from vitcow_testbed.synthetic_registry import key_of, sha_of, source_path

    registry, keys = Registry(StorageRoot(home)), [key_of(n) for n in range(count)]
    started = time.perf_counter()
    dagster_home.mkdir(parents=True)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        instance.add_dynamic_partitions("videos", keys)
        for n, key in enumerate(keys):
            registry.register(source_path(n), sha_of(n), size=1)
            version = {"dagster/data_version": sha_of(n)}
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="raw_video", partition=key, tags=version))
            if n % MISSING_EVERY:
                metadata = {"source_sha256": sha_of(n), "summary": dg.MetadataValue.md(f"**4 crops** of {key}"), "crops": 4}
                instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="object_crops", partition=key, metadata=metadata))
    (home / "populated").write_text(str(count))
    print(f"{count} partitions registered and materialized in {time.perf_counter() - started:.0f} s", flush=True)


def evaluate(instance, storage, when: dt.datetime):
    import dagster as dg

    from vitcow_assets.definitions import defs
    from vitcow_assets.defs.schedules import nightly_catchup

    with dg.build_schedule_context(
        instance=instance, instance_ref=instance.get_ref(), repository_def=defs.get_repository_def(),
        resources={"storage": storage}, scheduled_execution_time=when,
    ) as context:
        return nightly_catchup.evaluate_tick(context)


def fetch_baseline(instance, count: int) -> float:
    import dagster as dg

    from vitcow_testbed.synthetic_registry import key_of

    def one(n: int) -> float:
        start = time.perf_counter()
        instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey("object_crops"), asset_partitions=[key_of(n)]), limit=1)
        return time.perf_counter() - start

    return statistics.median(one(n) for n in range(1, count, max(1, count // FETCHES)))


def measure(count: int, work: Path) -> dict:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from vitcow_assets.defs.resources import VitcowStorage

    home, dagster_home = work / f"home_{count}", work / f"home_{count}" / "dagster"
    if not (home / "populated").is_file():
        shutil.rmtree(home, ignore_errors=True)
        populate(home, dagster_home, count)
    (home / "landing").mkdir(exist_ok=True)
    storage = VitcowStorage(home=str(home))
    out = {"partitions": count, "missing": -(-count // MISSING_EVERY)}
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        times, first = [], None
        for day in range(EVALUATIONS):
            start = time.perf_counter()
            data = evaluate(instance, storage, dt.datetime(2024, 6, 1 + day, 2, tzinfo=dt.timezone.utc))
            times.append(time.perf_counter() - start)
            first = data if first is None else first
        out["first_s"], out["steady_s"] = round(times[0], 3), round(max(times[1:]), 3)
        out["requested"] = len(first.run_requests)
        out["per_partition_fetch_s"] = round(fetch_baseline(instance, count), 5)
    out["steady_vs_fetches"] = round(out["steady_s"] / (count * out["per_partition_fetch_s"]), 3)
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", default="1000,5000", help="comma-separated numbers of partitions (default 1000,5000)")
    parser.add_argument("--work", default=None, help="folder kept between runs (default: a new temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vitcow-catchup-"))
    os.environ.pop("VITCOW_LANDING", None)
    try:
        results = [measure(int(c), work) for c in sorted(args.partitions.split(","), key=int)]
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    import vitcow_assets

    line = {f"{k}_{r['partitions']}": v for r in results for k, v in r.items() if k != "partitions"}
    if len(results) > 1:
        line["steady_growth"] = round(results[-1]["steady_s"] / results[0]["steady_s"], 2)
    line["code"] = str(Path(vitcow_assets.__file__).parent)
    print(json.dumps(line))
    print(" ".join(f"{k}={v}" for k, v in line.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
