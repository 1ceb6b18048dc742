"""Labelling API round trip: time per label through HTTP against the store alone.

Run from the repository root::

    python -m benchmarks.labelling [--labels 300] [--annotators 2] [--postgres]

Writes a small synthetic crop catalog to a temporary home, starts the labelling server
(``python -m vitcow_assets.labelling.server``, uvicorn, in a subprocess) and lets
``--annotators`` threads post ``--labels`` labels in all, each through its own keep-alive
HTTP connection, all at once. The baseline, measured in the same run on a fresh database of
the same kind: the same labels written straight through ``LabelStore.add_label`` by the same
number of threads. ``--postgres`` runs both on a PostgreSQL server started on 127.0.0.1.

The last line printed is ``key=value`` pairs for machines.
"""

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from vitcow_assets.labelling.store import LabelStore, default_url

LABELS = ["Standing", "Lying", "Feeding", "Walking"]


def _run_threads(work, annotators: int, per_annotator: int) -> tuple[list[float], float]:
    times: list[float] = []
    lock, start = threading.Lock(), threading.Event()

    def run(who: str) -> None:
        start.wait()
        for i, took in enumerate(work(who, per_annotator)):
            with lock:
                times.append(took)

    threads = [threading.Thread(target=run, args=(f"bench{k}",)) for k in range(annotators)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    return times, time.perf_counter() - t0


def _through_api(url: str, crops: list[str]):
    def work(who: str, n: int):
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(n):
                t = time.perf_counter()
                r = http.post("/api/labels", json={"annotator": who, "crop_id": crops[i % len(crops)], "label": LABELS[i % 4]})
                r.raise_for_status()
                yield time.perf_counter() - t

    return work


def _through_store(db_url: str, crops: list[str]):
    store = LabelStore(db_url)

    def work(who: str, n: int):
        for i in range(n):
            t = time.perf_counter()
            store.add_label(crops[i % len(crops)], who, LABELS[i % 4])
            yield time.perf_counter() - t

    return work, store


def _databases(postgres, folder: Path):
    """Two fresh database URLs (API run, baseline run)."""
    if postgres is None:
        return default_url(folder / "api"), default_url(folder / "direct")
    return tuple(postgres.create_database(name).replace("postgresql://", "postgresql+psycopg2://") for name in ("bench_api", "bench_direct"))


def main() -> None:
    from vitcow_testbed.servers import label_server, run_postgres
    from vitcow_testbed.synthetic_catalog import synthetic_catalog

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--annotators", type=int, default=2)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    per = max(1, args.labels // args.annotators)
    with tempfile.TemporaryDirectory() as tmp, (run_postgres() if args.postgres else contextlib.nullcontext()) as pg:
        home = Path(tmp) / "home"
        crops = synthetic_catalog(home, clips=3, objects=2, frames=6)["crop_id"].to_pylist()
        api_db, direct_db = _databases(pg, Path(tmp))
        with label_server(home, api_db) as (url, _):
            api_times, api_wall = _run_threads(_through_api(url, crops), args.annotators, per)
        work, store = _through_store(direct_db, crops)
        with store:
            base_times, base_wall = _run_threads(work, args.annotators, per)
    api_ms, base_ms = 1000 * statistics.median(api_times), 1000 * statistics.median(base_times)
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"{backend}: {len(api_times)} labels by {args.annotators} annotators at once")
    print(f"  through the API: median {api_ms:.2f} ms per label, {len(api_times) / api_wall:.0f} labels/s")
    print(f"  store alone:     median {base_ms:.2f} ms per label, {len(base_times) / base_wall:.0f} labels/s")
    print(f"backend={backend} labels={len(api_times)} annotators={args.annotators} api_median_ms={api_ms:.2f} "
          f"store_median_ms={base_ms:.2f} api_over_store={api_ms / base_ms:.2f}")


if __name__ == "__main__":
    main()
