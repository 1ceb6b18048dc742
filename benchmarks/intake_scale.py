"""Intake at farm scale: the landing sensor over a year of footage, locally or over SFTP.

Run from the repository root (the big runs under ``flock /tmp/vitcow-heavy.lock``)::

    python -m benchmarks.intake_scale --files 100000
    python -m benchmarks.intake_scale --files 20000 --sftp

Builds a farm-layout tree of N small files (``FARM_<f>/D<cc>/<YYYY-MM-DD>/<YYYYMMDDHHMM>_D<cc>.mp4``:
5 farms, 8 cameras, one file an hour from 08:00 to 15:00, the last day ending now; each
file and folder dated when it was recorded), and with ``--sftp`` serves it from OpenSSH's
sshd on 127.0.0.1 (``vitcow_testbed.servers``). A fresh Dagster instance (the
``dagster.yaml`` ``vitcow`` writes on first use: SQLite, the queued run coordinator) loads
the code location in process, and the sensor daemon's own iteration
(``dagster._daemon.sensor.execute_sensor_iteration``) evaluates the real ``landing_sensor``
tick after tick, storing each tick, cursor and run request as the daemon does; only its
15 s minimum interval is waived (and the other sensors left out). Remote sources are looked
at every tick (``VITCOW_REMOTE_LOOK_SECONDS=0``); the other settings are the defaults.

1. ticks until the first run requests: the first sees the tree (``first_tick_s``; a first
   sweep longer than a tick's 20 s of looking goes on at the next), the next takes the
   oldest files (``requests_first_tick``: the run requests of the first tick that has any,
   at most ``max_runs_per_tick``; ``ticks_to_first_request``);
2. the rest of the backlog is taken outside the sensor, with the caps lifted
   (``footage.intake.watch_sources``, as the sensor does, without asking for runs), so that
   the tree is "full": every file taken;
3. steady ticks, nothing changed (``steady_tick_s``: the slowest of 3, as Dagster recorded
   its start and end; ``listing_calls_steady``: folder listings in the busiest of them, counted
   at ``os.scandir`` and paramiko's ``listdir``;
   ``cursor_bytes``: the stored cursor; ``tick_bytes``: the stored tick row, ``job_ticks.tick_body``;
   ``steady_look_s``: of the tick, the sensor's own look, in ``watch_sources``);
4. one new file in the newest folder (its time set 2 minutes back, so it settles at its
   second look): ticks until its run is requested (``new_file_ticks``, ``new_file_tick_s``:
   the tick that requested it, of which Dagster's creating the run is most;
   ``new_file_look_s``: the sensor's look and take in that tick).

Also printed: a full sweep of the full tree (``full_sweep_s``, outside the sensor), and two
ratios against baselines of the same run: ``look_vs_full_sweep`` (the steady look over that
full sweep) and ``cursor_vs_file_list`` (the cursor over the one that listed every file,
which the sensor stored before the intake state, computed for this tree). The last line is
``key=value``.
"""

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FARMS, CAMERAS, HOURS = 5, 8, range(8, 16)
STEADY_TICKS = 3
#: ticks allowed until the first run requests (a first sweep of a big tree spans several)
FIRST_REQUEST_TICKS = 10
#: ticks allowed for a new file to be requested (the settle rule needs two looks)
NEW_FILE_TICKS = 4


def build_tree(root: Path, count: int, now: dt.datetime) -> Path:
    """``count`` files in the farm layout, the newest recorded an hour before ``now``; every
    file and folder dated when it was written. Returns the newest file's folder."""
    per_day = FARMS * CAMERAS * len(HOURS)
    days = -(-count // per_day)
    first_day = (now - dt.timedelta(hours=1)).date() - dt.timedelta(days=days - 1)
    made, newest = 0, None
    for day in range(days):
        date = first_day + dt.timedelta(days=day)
        for farm in range(FARMS):
            for camera in range(CAMERAS):
                folder = root / f"FARM_{farm}" / f"D{camera + 1:02d}" / date.isoformat()
                folder.mkdir(parents=True, exist_ok=True)
                stamp = None
                for hour in HOURS:
                    if made == count:
                        break
                    at = dt.datetime.combine(date, dt.time(hour)).replace(tzinfo=dt.timezone.utc)
                    stamp = at.timestamp()
                    path = folder / f"{at:%Y%m%d%H%M}_D{camera + 1:02d}.mp4"
                    path.write_bytes(f"{path.relative_to(root)}\n".encode() * 4)
                    os.utime(path, (stamp, stamp))
                    made += 1
                if stamp is not None:
                    os.utime(folder, (stamp, stamp))
                    newest = folder
    for folder in sorted({p.parent for p in root.glob("FARM_*/D*/*")}) + sorted(root.glob("FARM_*")):
        latest = max(p.stat().st_mtime for p in folder.iterdir())
        os.utime(folder, (latest, latest))
    return newest


@contextlib.contextmanager
def sftp_server(folder: Path):
    """OpenSSH's sshd on 127.0.0.1 (``vitcow_testbed.servers``), stopped afterwards."""
    from vitcow_testbed.servers import SshServer

    server = SshServer(folder).start()
    try:
        yield server
    finally:
        server.stop()


class Listings:
    """Counts the listings of folders of the tree this process makes: ``os.scandir`` (local
    folders; also what ``os.walk`` uses) and paramiko's ``listdir_iter`` / ``listdir_attr``
    (SFTP folders; the tree is the only thing listed over SFTP here)."""

    def __init__(self, tree: Path) -> None:
        import paramiko

        self.count, self.tree = 0, str(tree)
        for owner, name in ((os, "scandir"), (paramiko.SFTPClient, "listdir_iter"), (paramiko.SFTPClient, "listdir_attr")):
            setattr(owner, name, self._counted(getattr(owner, name)))

    def _counted(self, function):
        def counted(*args, **kwargs):
            path = str(args[-1] if args else kwargs.get("path", ""))
            if path.startswith(self.tree):
                self.count += 1
            return function(*args, **kwargs)

        return counted


class Daemon:
    """The sensor daemon's iteration over an in-process code location, ``landing_sensor`` only."""

    def __init__(self, instance, tree: Path) -> None:
        import dagster._daemon.sensor as sensor_daemon
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

        import vitcow_assets.defs.sensors as sensors

        self.instance, self.daemon, self.listings, self.watch_s = instance, sensor_daemon, Listings(tree), []
        watch = sensors.watch_sources

        def timed_watch(*args, **kwargs):  # the sensor's own look and takes, without Dagster's part
            start = time.perf_counter()
            try:
                return watch(*args, **kwargs)
            finally:
                self.watch_s.append(time.perf_counter() - start)

        sensors.watch_sources = timed_watch
        # the 15 s minimum interval is waived; the other sensors never run here
        sensor_daemon.is_under_min_interval = lambda state, remote, *a, **k: remote.name != "landing_sensor"
        origin = LoadableTargetOrigin(executable_path=sys.executable, module_name="vitcow_assets.definitions", attribute="defs", working_directory=str(REPO))
        self.context = WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin)))
        repo = next(iter(self.context.create_request_context().get_code_location_entries().values())).code_location.get_repository("__repository__")
        self.sensor = repo.get_sensor("landing_sensor")

    def tick(self):
        """One iteration: the landing sensor's tick as stored, the folders it listed and the
        seconds its look and takes took."""
        before, watched = self.listings.count, len(self.watch_s)
        list(self.daemon.execute_sensor_iteration(self.context, logging.getLogger("bench"), None, None))
        ticks = self.instance.get_ticks(self.sensor.get_remote_origin_id(), self.sensor.selector_id, limit=1)
        if not ticks or ticks[0].status.value == "FAILURE":
            raise SystemExit(f"landing_sensor tick failed: {ticks[0].error if ticks else 'no tick'}")
        return ticks[0], self.listings.count - before, sum(self.watch_s[watched:])

    def close(self) -> None:
        self.context.__exit__(None, None, None)


def stored_tick_bytes(dagster_home: Path, tick_id: int) -> int:
    with contextlib.closing(sqlite3.connect(dagster_home / "schedules" / "schedules.db")) as db:
        return int(db.execute("SELECT length(tick_body) FROM job_ticks WHERE id = ?", (tick_id,)).fetchone()[0])


def file_list_bytes(tree: Path) -> int:
    """The cursor of the sensor before the intake state, for this tree: every file's path
    and signature (``core.settle.SettleCursor``, as it stored them)."""
    from vitcow_assets.core.settle import SettleCursor

    cursor = SettleCursor()
    for path in tree.rglob("*.mp4"):
        info = path.stat()
        cursor.done[str(path)] = [info.st_size, info.st_mtime_ns]
    empty = {"seen": {}, "done": {}}
    return len(json.dumps({"sources": {"landing": cursor.as_dict(), "landing:prompts": empty}, "waiting": 0}, sort_keys=True))


def duration(tick) -> float:
    return tick.end_timestamp - tick.timestamp


def drain(home: Path, landing: str) -> tuple[float, int]:
    """Take the whole backlog outside the sensor (caps lifted, no runs asked for)."""
    from vitcow_assets.footage import intake

    if not hasattr(intake, "IntakePolicy"):
        return -1.0, 0  # the code before the intake state: its second tick took everything
    from vitcow_assets.core.intake_cursor import IntakeCursor
    from vitcow_assets.core.source_paths import parse_patterns
    from vitcow_assets.footage.intake import IntakePolicy, watch_sources
    from vitcow_assets.footage.intake_state import IntakeState
    from vitcow_assets.footage.layout import StorageRoot
    from vitcow_assets.remote.locations import parse_sources

    policy = IntakePolicy(settle_seconds=10, remote_look_s=0, max_registrations=10**9, max_runs=10**9, budget_s=3600, look_budget_s=3600, patterns=parse_patterns(None))
    sources = parse_sources(landing, home / "landing")
    start, taken, cursor = time.perf_counter(), 0, IntakeCursor(owner="benchmark-drain")
    with IntakeState.open(None, home) as state:
        while True:
            watch = watch_sources(StorageRoot(home), sources, state, cursor, time.time(), policy, logging.getLogger("drain"), track_requests=False)
            cursor, taken = watch.cursor, taken + len(watch.arrivals)
            if not watch.backlog and not watch.waiting:
                break
        sweep_start = time.perf_counter()
        watch_sources(StorageRoot(home), sources, state, cursor, time.time(), policy, logging.getLogger("drain"), force_full=True, track_requests=False)
        full_sweep = time.perf_counter() - sweep_start
    print(f"drained: {taken} files taken outside the sensor in {sweep_start - start:.1f} s; a full sweep of the full tree {full_sweep:.2f} s")
    return full_sweep, taken


def run(count: int, sftp: bool, work: Path) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    tree, home = work / "tree", work / "home"
    started = time.perf_counter()
    newest = build_tree(tree, count, now)
    print(f"tree: {count} files in {sum(1 for _ in tree.glob('FARM_*/D*/*'))} date folders, built in {time.perf_counter() - started:.1f} s")
    with sftp_server(work / "sshd") if sftp else contextlib.nullcontext() as server:
        landing = server.url(str(tree)) + "/" if sftp else str(tree)
        os.environ.update(VITCOW_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), VITCOW_LANDING=landing, VITCOW_REMOTE_LOOK_SECONDS="0")
        if sftp:
            os.environ.update(VITCOW_SFTP_KEY=str(server.user_key), VITCOW_SFTP_KNOWN_HOSTS=str(server.known_hosts))
        return measure(home, landing, tree, newest, count)


def measure(home: Path, landing: str, tree: Path, newest: Path, count: int) -> dict:
    import dagster as dg

    from vitcow_assets.cli.instance import ensure_dagster_home

    dagster_home = ensure_dagster_home()
    out = {"files": count}
    with dg.DagsterInstance.get() as instance:
        daemon = Daemon(instance, tree)
        try:
            ticks = [daemon.tick()[0]]
            while not ticks[-1].run_ids and len(ticks) < FIRST_REQUEST_TICKS:
                ticks.append(daemon.tick()[0])
            out["first_tick_s"] = round(duration(ticks[0]), 3)
            out["requests_first_tick"] = len(ticks[-1].run_ids)
            out["ticks_to_first_request"] = len(ticks)
            print("first ticks: " + ", ".join(f"{duration(t):.2f} s ({len(t.run_ids)} run requests)" for t in ticks))
            full_sweep, _ = drain(home, landing)
            out["full_sweep_s"] = round(full_sweep, 3)
            steady = [daemon.tick() for _ in range(STEADY_TICKS)]
            last = steady[-1][0]
            out["steady_tick_s"] = round(max(duration(t) for t, _, _ in steady), 3)
            out["steady_look_s"] = round(max(w for _, _, w in steady), 3)
            out["cursor_bytes"] = len(last.cursor or "")
            out["tick_bytes"] = stored_tick_bytes(dagster_home, last.tick_id)
            out["listing_calls_steady"] = max(listed for _, listed, _ in steady)
            out.update(new_file(daemon, newest))
            # baselines from the same run: a full sweep of the same tree, and the cursor that
            # listed every file (``core.settle.SettleCursor``, what the sensor stored before)
            out["look_vs_full_sweep"] = round(out["steady_look_s"] / full_sweep, 4) if full_sweep > 0 else -1
            out["cursor_vs_file_list"] = round(out["cursor_bytes"] / file_list_bytes(tree), 6)
        finally:
            daemon.close()
    return out


def new_file(daemon: Daemon, folder: Path) -> dict:
    path = folder / f"{folder.name.replace('-', '')}2359_{folder.parent.name}.mp4"
    path.write_bytes(b"a new file in a full tree\n" * 4)
    stamp = time.time() - 120
    os.utime(path, (stamp, stamp))
    for ticks in range(1, NEW_FILE_TICKS + 1):
        tick, _, looked = daemon.tick()
        if tick.run_ids:
            return {"new_file_ticks": ticks, "new_file_tick_s": round(duration(tick), 3), "new_file_look_s": round(looked, 3)}
    return {"new_file_ticks": -1, "new_file_tick_s": -1, "new_file_look_s": -1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="files in the tree (default 2000)")
    parser.add_argument("--sftp", action="store_true", help="serve the tree over SFTP from sshd on 127.0.0.1")
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary one, removed afterwards)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vitcow-intake-"))
    try:
        out = run(args.files, args.sftp, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    out["protocol"] = "sftp" if args.sftp else "local"
    print(json.dumps(out))
    print(" ".join(f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
