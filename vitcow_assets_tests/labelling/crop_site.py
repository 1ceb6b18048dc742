"""A storage root and Dagster instance as a user has them after a first dataset: two farms'
footage processed (motion backend, real pipeline), the crop catalog, labels (with an undo in
one crop's history, a segment label on another), and a dataset build holding FARM_B out as
the test split; and the real
Dagster webserver over that instance.

The instance is a persistent one under ``<base>/dagster_home`` (what ``DAGSTER_HOME`` names
for the webserver), so the runs that made the crops are the runs the UI shows.
"""

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.labelling.store import LabelStore, default_url
from vitcow_assets_tests.helpers import register
from vitcow_assets_tests.labelling.crops import SMALL_CLIPS
from vitcow_testbed.servers import free_port, wait_for_port
from vitcow_testbed.synthetic import DEFAULT_OBJECTS, MovingBox, write_video

REPO = Path(__file__).resolve().parents[2]
FARMS = (("FARM_A", "202502052200_D01"), ("FARM_B", "202502062200_D01"))
LABELS = ("Standing", "Lying")


@dataclasses.dataclass(frozen=True)
class Site:
    home: Path
    dagster_home: Path
    dataset: Path
    #: the environment of every process of the site (CLI, servers)
    env: dict
    pages_port: int
    dagster_port: int
    #: partition key -> run id of the process_video run
    runs: dict
    #: asset name -> metadata of its materialization (the catalog, labels and dataset assets)
    metadata: dict


def _videos(folder: Path) -> list[Path]:
    out = []
    for n, (farm, stem) in enumerate(FARMS):
        path = folder / farm / "D01" / f"{stem}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        objects = tuple(MovingBox((o.start[0] + 6 * n, o.start[1]), o.velocity, (20, 16), o.colour) for o in DEFAULT_OBJECTS)
        out.append(write_video(path, frames=60, width=160, height=120, objects=objects))
    return out


def _label(home: Path) -> None:
    catalog = pq.read_table(home / "catalog" / "crops.parquet").to_pylist()
    with LabelStore(default_url(home)) as store:
        for crop in catalog:
            store.add_label(crop["crop_id"], "alice", LABELS[crop["track_id"] % 2], source="import")
        store.add_label(catalog[0]["crop_id"], "alice", "Standing_up", 2, 5, source="page")  # a segment: a trimmed copy in the lists
        first_b = next(c for c in catalog if c["farm"] == "FARM_B")["crop_id"]
        store.add_label(first_b, "bob", "Walking", source="page")
        store.undo_last("bob", first_b, source="page")
        store.add_label(first_b, "bob", LABELS[0], source="page")


def build_site(base: Path) -> Site:
    """Process, catalogue, label and build a dataset under ``base`` (see the module docstring)."""
    home, dagster_home, dataset = base / "home", base / "dagster_home", base / "datasets" / "v1"
    dagster_home.mkdir(parents=True)
    pages_port, dagster_port = free_port(), free_port()
    env = {**os.environ, "VITCOW_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
           "VITCOW_PAGES_URL": f"http://127.0.0.1:{pages_port}", "VITCOW_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
           "VITCOW_DATASET_TEST_FARMS": "FARM_B", "VITCOW_DATASET_DIR": str(dataset), "VITCOW_DATASET_MIN_PRESENCE": "0"}
    for name in ("VITCOW_LABELS_DB", "VITCOW_TAXONOMY", "VITCOW_SAM3_CHECKPOINT", "VITCOW_LANDING"):
        env.pop(name, None)
    resources = build_resources(backend="motion", home=str(home), environ=env)
    runs = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for video in _videos(base / "landing"):
            key = register(video, home, instance)
            result = defs.resolve_job_def("process_video").execute_in_process(run_config=SMALL_CLIPS, instance=instance, partition_key=key, resources=resources)
            runs[key] = result.run_id
        defs.resolve_job_def("crop_catalog_job").execute_in_process(instance=instance, resources=resources)
        _label(home)
        built = defs.resolve_job_def("build_dataset").execute_in_process(instance=instance, resources=resources)
    materializations = [event.materialization for event in built.get_asset_materialization_events()]
    metadata = {m.asset_key.to_user_string(): m.metadata for m in materializations}
    return Site(home, dagster_home, dataset, env, pages_port, dagster_port, runs, metadata)


def _skip_welcome(url: str, timeout_s: float = 60) -> None:
    """Tell the instance its first-visit dialog ("Join the Dagster community") was seen, as
    its Skip button does (the ``setNuxSeen`` mutation), so that it covers no page."""
    body = json.dumps({"query": "mutation SetNuxSeen { setNuxSeen }"}).encode()
    deadline = time.monotonic() + timeout_s
    while True:
        request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                if json.loads(reply.read()).get("data", {}).get("setNuxSeen") is not None:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}/graphql did not take setNuxSeen within {timeout_s}s")
        time.sleep(0.5)


@contextlib.contextmanager
def dagster_webserver(site: Site) -> Iterator[str]:
    """The Dagster webserver (the UI) over the site's instance and this code location, on
    127.0.0.1 at the port the site's crop pages link to; its base URL."""
    log = open(site.home / "dagster-webserver.log", "wb")
    args = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(site.dagster_port), "-w", str(REPO / "workspace.yaml")]
    process = subprocess.Popen(args, cwd=REPO, env=site.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(site.dagster_port, timeout_s=120, process=process)
        url = f"http://127.0.0.1:{site.dagster_port}"
        _skip_welcome(url)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
