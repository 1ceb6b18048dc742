"""Looks that do not walk what cannot have changed (``footage.looking``, ``footage.folders``),
per protocol, against a real local tree, OpenSSH's sshd and moto's S3 server: what a quick
look lists, what it leaves to the full sweep, and that the full sweep still finds it."""

import logging
import os
import time
from pathlib import Path

import pytest

from vitcow_assets.core.folder_watch import TIME_RESOLUTION_S
from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.core.settle import TAKEN, WAITING
from vitcow_assets.footage.intake import IntakePolicy, watch_sources
from vitcow_assets.footage.intake_state import IntakeState
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.remote.locations import parse_sources
from vitcow_testbed import servers

LOG = logging.getLogger("test_looking")
HOUR = 3600.0


def put(path: Path, data: bytes, age_s: float = HOUR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def date_folder(root: Path, day: str, age_s: float) -> Path:
    """A date folder of two recordings, the folder dated with its last one."""
    folder = root / "FARM_A" / "D01" / day
    for hour in ("0800", "0900"):
        put(folder / f"{day}{hour}_D01.mp4", f"{day}{hour}".encode() * 8, age_s)
    stamp = time.time() - age_s
    os.utime(folder, (stamp, stamp))
    return folder


class Intake:
    """The intake of one source, looked at as the sensor does, with its calls counted."""

    def __init__(self, home: Path, landing: str, **policy) -> None:
        self.root, self.sources = StorageRoot(home), parse_sources(landing, home / "landing")
        self.policy = IntakePolicy(settle_seconds=2, remote_look_s=0, **policy)
        self.cursor = IntakeCursor()

    def tick(self, force_full: bool = False):
        with IntakeState.open(None, self.root.home, dagster_home="") as state:
            watch = watch_sources(self.root, self.sources, state, self.cursor, time.time(), self.policy, LOG, force_full=force_full)
        self.cursor = watch.cursor
        return watch

    def rows(self) -> dict:
        with IntakeState.open(None, self.root.home, dagster_home="") as state:
            return {Path(r.fs_path).name: r.mark.state for r in state.rows()}

    def settle(self) -> None:
        """Two looks far enough apart that every folder time is trusted."""
        self.tick()
        self.tick()
        time.sleep(TIME_RESOLUTION_S)
        self.tick()


def test_a_quick_look_lists_nothing_unchanged_and_only_the_folder_that_changed(tmp_path):
    tree = tmp_path / "tree"
    for day in ("20240101", "20240102", "20240103"):
        date_folder(tree, day, HOUR)
    intake = Intake(tmp_path / "home", str(tree))
    first = intake.tick()
    assert first.calls.listings == 6  # root, farm, camera, three days
    intake.settle()
    assert set(intake.rows().values()) == {TAKEN}

    steady = intake.tick()
    assert steady.calls.listings == 0 and steady.calls.folder_stats == 6
    assert steady.arrivals == []

    put(tree / "FARM_A" / "D01" / "20240103" / "202401031000_D01.mp4", b"new" * 8)
    seen = intake.tick()
    assert seen.calls.listings == 1  # the one date folder whose time changed
    assert intake.rows()["202401031000_D01.mp4"] == WAITING
    taken = intake.tick()  # found within two looks
    assert [a.file.name for a in taken.arrivals] == ["202401031000_D01.mp4"]


def test_a_file_rewritten_in_place_in_an_old_folder_is_found_by_the_next_full_sweep(tmp_path):
    tree = tmp_path / "tree"
    old = date_folder(tree, "20240101", 30 * 86400)
    date_folder(tree, "20240102", HOUR)
    intake = Intake(tmp_path / "home", str(tree))
    intake.settle()
    folder_time = old.stat().st_mtime_ns
    put(old / "202401010800_D01.mp4", b"rewritten in place" * 8, 30 * 86400)  # no entry added: the folder keeps its time
    assert old.stat().st_mtime_ns == folder_time

    for _ in range(2):
        quick = intake.tick()
        assert quick.calls.listings == 0 and quick.arrivals == []

    sweep = intake.tick(force_full=True)
    assert sweep.calls.listings == 5 and intake.rows()["202401010800_D01.mp4"] == WAITING
    again = intake.tick()
    assert [(a.file.name, a.outcome.status) for a in again.arrivals] == [("202401010800_D01.mp4", "changed")]


def test_a_removed_folder_is_forgotten_and_a_sweep_cut_short_goes_on(tmp_path):
    tree = tmp_path / "tree"
    for day in ("20240101", "20240102", "20240103"):
        date_folder(tree, day, HOUR)
    intake = Intake(tmp_path / "home", str(tree), look_budget_s=0.0)
    cut = intake.tick()  # no time to look: the sweep stops at once and goes on next time
    assert cut.looks and not next(iter(cut.looks.values())).complete
    assert next(iter(intake.cursor.sources.values())).sweeping
    intake.policy = IntakePolicy(settle_seconds=2, remote_look_s=0)
    intake.settle()
    assert not next(iter(intake.cursor.sources.values())).sweeping and len(intake.rows()) == 6

    for path in (tree / "FARM_A" / "D01" / "20240102").iterdir():
        path.unlink()
    (tree / "FARM_A" / "D01" / "20240102").rmdir()
    gone = intake.tick()
    assert gone.calls.listings == 1  # the camera folder, whose time changed
    assert sorted(intake.rows()) == ["202401010800_D01.mp4", "202401010900_D01.mp4", "202401030800_D01.mp4", "202401030900_D01.mp4"]


# -- SFTP: folder times in whole seconds; quiet folders are left to the full sweep ----------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if servers.SSHD is None or servers.SSH_KEYGEN is None:
        pytest.skip("OpenSSH server binaries (sshd, ssh-keygen) not installed: apt-get install openssh-server")
    server = servers.SshServer(tmp_path_factory.mktemp("sshd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def sftp_env(sshd, monkeypatch):
    monkeypatch.setenv("VITCOW_SFTP_KEY", str(sshd.user_key))
    monkeypatch.setenv("VITCOW_SFTP_KNOWN_HOSTS", str(sshd.known_hosts))
    monkeypatch.delenv("VITCOW_SFTP_PASSWORD", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return sshd


def test_over_sftp_quiet_folders_cost_no_round_trip_until_the_full_sweep(sftp_env, tmp_path):
    tree = tmp_path / "tree"
    old = date_folder(tree, "20240101", 30 * 86400)
    date_folder(tree, "20240102", HOUR)
    intake = Intake(tmp_path / "home", sftp_env.url(str(tree)) + "/", remote_active_s=86400)
    intake.settle()
    assert set(intake.rows().values()) == {TAKEN}

    steady = intake.tick()
    assert steady.calls.listings == 0
    assert steady.calls.folder_stats == 4  # root, farm, camera, the active day: not the month-old one

    put(old / "202401011000_D01.mp4", b"late upload" * 8, 30 * 86400)  # into a quiet folder
    assert intake.tick().calls.listings == 0  # left to the full sweep
    sweep = intake.tick(force_full=True)
    assert sweep.calls.listings == 5 and intake.rows()["202401011000_D01.mp4"] == WAITING
    assert [a.file.name for a in intake.tick().arrivals] == ["202401011000_D01.mp4"]


# -- S3: no folder times; active prefixes are listed at every look -------------------------------


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("moto.server", reason="moto[server] not installed")
    server = servers.S3Server().start()
    try:
        yield server
    finally:
        server.stop()


def test_over_s3_only_active_prefixes_are_listed_between_full_sweeps(s3, tmp_path, monkeypatch):
    import s3fs

    for name, value in {"VITCOW_S3_ENDPOINT_URL": s3.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing", skip_instance_cache=True)
    fs.mkdir("looks")
    fs.pipe("looks/FARM_A/20240101/202401010800_D01.mp4", b"old" * 8)
    quiet_for = 3.0
    time.sleep(quiet_for + 1.5)  # S3 times are whole seconds
    fs.pipe("looks/FARM_A/20240102/202401020800_D01.mp4", b"new" * 8)
    intake = Intake(tmp_path / "home", "s3://looks/", remote_active_s=quiet_for)
    full = intake.tick()
    assert full.calls.listings == 4  # the bucket, the farm, two dates
    settled = intake.tick()  # both listed again: they held files still arriving
    assert [a.file.name for a in settled.arrivals] == ["202401010800_D01.mp4"]  # the new one is too recent
    quick = intake.tick()
    assert quick.calls.listings == 3  # the quiet date is passed by
    assert intake.tick(force_full=True).calls.listings == 4
