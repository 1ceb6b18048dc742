"""A landing sensor in a process of its own, for the tests that kill one or race two.

    python -m vitcow_assets_tests.defs.sensor_child CONFIG.json

``CONFIG``: ``dagster_home``, ``storage`` (the storage resource's fields), ``cursor`` (the
cursor to start from, or null), ``ticks`` (how many), ``pause_s`` (between ticks), ``go``
(a file to wait for before the first tick, after writing the file ``ready``; or null), ``block_at_take`` (block for ever, after writing the file
``blocked``, when about to mark its Nth video taken: it is registered but not yet marked;
0: never) and ``out`` (where each tick's run requests go, one JSON line per tick).
"""

import json
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from vitcow_assets.definitions import defs
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.sensors import landing_sensor
from vitcow_assets.footage import intake_state

#: seconds a child waits for its start signal
GO_TIMEOUT_S = 60


def block_at_take(n: int, marker: Path) -> None:
    """The Nth video marked taken blocks for ever (the test kills the process there)."""
    original, calls = intake_state.IntakeState.mark_taken, []

    def mark_taken(self, uri, signature, partition_key, *args, **kwargs):
        if partition_key is not None:
            calls.append(uri)
            if len(calls) == n:
                marker.write_text(uri)
                while True:
                    time.sleep(1)
        return original(self, uri, signature, partition_key, *args, **kwargs)

    intake_state.IntakeState.mark_taken = mark_taken


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + GO_TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no start signal {path} after {GO_TIMEOUT_S} s")
        time.sleep(0.01)


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    if config.get("block_at_take"):
        block_at_take(config["block_at_take"], Path(config["blocked"]))
    storage = VitcowStorage(**config["storage"])
    cursor = config.get("cursor")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(config["dagster_home"])) as instance:
        if config.get("go"):
            Path(config["ready"]).touch()
            wait_for(Path(config["go"]))
        with open(config["out"], "a") as out:
            for _ in range(config["ticks"]):
                with dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), definitions=defs, cursor=cursor, resources={"storage": storage}) as ctx:
                    result = landing_sensor.evaluate_tick(ctx)
                cursor = result.cursor
                for request in result.dynamic_partitions_requests:
                    instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                out.write(json.dumps({"runs": [r.partition_key for r in result.run_requests], "cursor": cursor}) + "\n")
                out.flush()
                time.sleep(config.get("pause_s", 0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
