"""Remote sources and destinations against real servers on 127.0.0.1: OpenSSH's sshd
(serving a temporary farm-layout tree) and moto's S3 server. Faults are real too: a TCP
proxy that cuts the SSH connection mid-download, wrong keys and passwords, unknown host
keys, a closed port, a file deleted on the server."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from vitcow_assets.definitions import build_resources, defs
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.defs.publishing import published_crops
from vitcow_assets.defs.sensors import landing_sensor
from vitcow_assets.footage.registry import Registry
from vitcow_assets.remote.filesystems import RemoteError, VanishedError
from vitcow_assets.core.intake_cursor import IntakeCursor
from vitcow_assets.footage.intake import INCOMING, IntakePolicy, watch_sources
from vitcow_assets.footage.intake_state import IntakeState
from vitcow_assets.remote.locations import Location, parse_sources
from vitcow_assets.remote.transfer import Connection, download
from vitcow_assets.stages.publishing import destination_of, publish_outputs
from vitcow_assets.footage.layout import StorageRoot
from vitcow_testbed import servers
from vitcow_testbed.synthetic import write_video

pytestmark = pytest.mark.skipif(
    servers.SSHD is None or servers.SSH_KEYGEN is None,
    reason="OpenSSH server binaries (sshd, ssh-keygen) not installed: apt-get install openssh-server",
)

CAMERA_FILE = "FARM_A/D01/202501010600_D01.mp4"


class Log:
    """Collects what the code under test logs (the sensor's ``context.log`` interface)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg):
        self.lines.append(("info", msg))

    def warning(self, msg):
        self.lines.append(("warning", msg))

    def warnings(self) -> list[str]:
        return [m for level, m in self.lines if level == "warning"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = servers.SshServer(tmp_path_factory.mktemp("sshd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("moto.server", reason="moto[server] not installed")
    server = servers.S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def env(sshd, s3, monkeypatch):
    monkeypatch.setenv("VITCOW_SFTP_KEY", str(sshd.user_key))
    monkeypatch.setenv("VITCOW_SFTP_KNOWN_HOSTS", str(sshd.known_hosts))
    monkeypatch.delenv("VITCOW_SFTP_PASSWORD", raising=False)
    monkeypatch.delenv("VITCOW_SFTP_NO_HOST_KEY_CHECK", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("VITCOW_S3_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("remote_footage") / "cam.mp4", frames=60)


def age(path: Path, seconds: float = 3600) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def bucket(s3, name: str):
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing", skip_instance_cache=True)
    if not fs.exists(name):
        fs.mkdir(name)
    return fs


def farm_tree(tmp_path: Path, footage: Path, files=(CAMERA_FILE,)) -> Path:
    root = tmp_path / "farm_server"
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(footage, root / rel)
        age(root / rel)
    return root


@pytest.fixture()
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


class Sensor:
    def __init__(self, tmp_path: Path, instance, sources: str, publish_to: str | None = None) -> None:
        self.home = tmp_path / "home"
        self.storage = VitcowStorage(home=str(self.home), landing_sources=sources, settle_seconds=2, publish_to=publish_to, remote_look_seconds=0)
        self.instance = instance
        self.cursor = None

    def tick(self) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=self.instance, instance_ref=self.instance.get_ref(), definitions=defs, cursor=self.cursor, resources={"storage": self.storage}
        ) as ctx:
            result = landing_sensor.evaluate_tick(ctx)
        self.cursor = result.cursor
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result

    def run(self, key: str):
        job = defs.resolve_job_def("process_video")
        resources = {**build_resources(backend="motion", home=str(self.home)), "storage": self.storage}
        return job.execute_in_process(instance=self.instance, partition_key=key, resources=resources)

    def publish(self, key: str):
        return dg.materialize([published_crops], instance=self.instance, partition_key=key, resources={"storage": self.storage})


# --- new remote file -> partition -> crops -> published --------------------------------


def test_sftp_file_becomes_partition_crops_and_published_to_s3(instance, env, sshd, s3, tmp_path, footage):
    tree = farm_tree(tmp_path, footage)
    fs = bucket(s3, "lab")
    sensor = Sensor(tmp_path, instance, f"barn={sshd.url(str(tree))}/", publish_to="s3://lab/published")

    first = sensor.tick()
    assert first.run_requests == []  # seen once: not yet known to be settled
    second = sensor.tick()
    assert len(second.run_requests) == 1
    request = second.run_requests[0]
    key = request.partition_key
    assert request.tags["vitcow/farm"] == "FARM_A" and request.tags["vitcow/camera"] == "D01"
    registration = Registry(StorageRoot(sensor.home)).get(key)
    assert registration.source_path == sshd.url(str(tree / CAMERA_FILE)) and registration.source_name == "barn"
    assert sensor.tick().run_requests == []  # taken once

    result = sensor.run(key)
    assert result.success
    layout = sensor.storage.video(key)
    raw = json.loads(layout.raw_video_json.read_text())
    assert raw["stored_how"] == "staged" and raw["source_path"].startswith("sftp://")
    assert (raw["farm"], raw["camera"], raw["recorded_at"]) == ("FARM_A", "D01", "2025-01-01T06:00:00")
    assert not any((sensor.home / INCOMING).iterdir())  # the staged copy was consumed
    raw_meta = result.asset_materializations_for_node("raw_video")[0].metadata
    assert raw_meta["farm"].value == "FARM_A" and raw_meta["source_uri"].value.startswith("sftp://")
    crops = pq.read_table(layout.crops_table).to_pylist()
    assert crops and all(r["farm"] == "FARM_A" and r["camera"] == "D01" and r["source_uri"] == registration.source_path for r in crops)
    assert crops[0]["recorded_at"].isoformat() == "2025-01-01T06:00:00"
    assert "sftp://" in crops[0]["source_uri"] and "testing" not in json.dumps(raw)  # no secrets

    published = fs.find("lab/published", detail=True)
    prefix = f"lab/published/FARM_A/{key}/"
    assert all(p.startswith(prefix) for p in published)
    manifest = pq.read_table(fs.open(prefix + "crops/crops.parquet", "rb")).to_pylist()
    assert len(manifest) == len(crops)
    for row in manifest:
        assert row["published_uri"].startswith(f"s3://{prefix}crops/") and row["published_uri"][5:] in published
        assert published[row["published_uri"][5:]]["size"] == Path(row["crop_path"]).stat().st_size
    assert {prefix + "clips/clips.parquet", prefix + "masks/object_masks.parquet", prefix + "published.json", prefix + "previews/contact_sheet.png"} <= set(published)

    # Publishing again uploads nothing new.
    again = sensor.publish(key)
    meta = again.asset_materializations_for_node("published_crops")[0].metadata
    assert meta["uploaded"].value == 0 and meta["unchanged"].value == len(manifest) + 6  # + 6 tables, records and the contact sheet
    assert {p: i["LastModified"] for p, i in fs.find("lab/published", detail=True).items()} == {
        p: i["LastModified"] for p, i in published.items()
    }


def test_no_destination_publishes_nothing(instance, env, tmp_path, footage):
    sensor = Sensor(tmp_path, instance, str(tmp_path / "landing"))
    (tmp_path / "landing").mkdir()
    age(Path(shutil.copyfile(footage, tmp_path / "landing" / "202501010600_D07.mp4")))
    sensor.tick()
    (request,) = sensor.tick().run_requests
    result = sensor.run(request.partition_key)
    assert result.success and result.asset_materializations_for_node("published_crops") == []
    # A local source still gets the camera and time from the name pattern.
    row = pq.read_table(sensor.storage.video(request.partition_key).crops_table).to_pylist()[0]
    assert row["camera"] == "D07" and row["farm"] is None and row["source_uri"].startswith("file:///")


# --- settle rule, changed bytes, duplicates -----------------------------------------------


def _tick(root, sources, cursor, now, settle_s, log, budget_s=40.0):
    """One look at every source, as the landing sensor takes it (remote sources at every
    tick): (arrivals, cursor, files still arriving or waiting to be taken)."""
    policy = IntakePolicy(settle_seconds=settle_s, remote_look_s=0, budget_s=budget_s)
    with IntakeState.open(None, root.home, dagster_home="") as state:
        watch = watch_sources(root, sources, state, cursor or IntakeCursor(), now, policy, log)
    return watch.arrivals, watch.cursor, watch.waiting + watch.backlog


def test_growing_remote_file_is_not_taken_until_it_settles(env, sshd, tmp_path, footage):
    tree = tmp_path / "tree"
    target = tree / "FARM_B/D02/202502010700_D02.mp4"
    target.parent.mkdir(parents=True)
    data = footage.read_bytes()
    target.write_bytes(data[: len(data) // 2])  # being uploaded right now
    sources = parse_sources(f"barn={sshd.url(str(tree))}/", tmp_path)
    root, log, state = StorageRoot(tmp_path / "home"), Log(), None
    for _ in range(2):
        arrivals, state, waiting = _tick(root, sources, state, time.time(), 2, log)
        assert arrivals == [] and waiting == 1
    target.write_bytes(data)  # more bytes arrived since the last look
    age(target)
    arrivals, state, waiting = _tick(root, sources, state, time.time(), 2, log)
    assert arrivals == [] and waiting == 1  # changed since the last look: wait once more
    arrivals, state, waiting = _tick(root, sources, state, time.time(), 2, log)
    assert [a.outcome.status for a in arrivals] == ["new"] and waiting == 0
    assert Registry(root).get(arrivals[0].outcome.registration.key).size == len(data)


def test_changed_bytes_rerun_and_same_bytes_under_new_name_are_not_processed_twice(instance, env, sshd, tmp_path, footage):
    tree = farm_tree(tmp_path, footage)
    sensor = Sensor(tmp_path, instance, f"barn={sshd.url(str(tree))}/")
    sensor.tick()
    (first,) = sensor.tick().run_requests
    key = first.partition_key

    copy = tree / "FARM_A/D01/202501010700_D01.mp4"  # same bytes, another name
    shutil.copyfile(tree / CAMERA_FILE, copy)
    age(copy)
    sensor.tick()
    assert sensor.tick().run_requests == []
    assert [r.key for r in Registry(StorageRoot(sensor.home)).all()] == [key]
    assert not any((sensor.home / INCOMING).glob("*.mp4"))  # the duplicate's download was dropped

    other = write_video(tmp_path / "other.mp4", frames=40)  # new bytes at the same path
    shutil.copyfile(other, tree / CAMERA_FILE)
    age(tree / CAMERA_FILE, 1800)
    sensor.tick()
    (changed,) = sensor.tick().run_requests
    assert changed.partition_key == key and changed.run_key != first.run_key
    assert Registry(StorageRoot(sensor.home)).get(key).revision == 2


# --- faults -------------------------------------------------------------------------------


def big_file(tmp_path: Path) -> Path:
    tree = tmp_path / "farm_server"
    (tree / CAMERA_FILE).parent.mkdir(parents=True)
    (tree / CAMERA_FILE).write_bytes(os.urandom(1_500_000))
    return tree


def test_connection_dropped_mid_download_is_resumed_without_a_partial_file(env, sshd, tmp_path):
    tree = big_file(tmp_path)
    size = (tree / CAMERA_FILE).stat().st_size
    with servers.CuttingProxy(sshd.port, cut_after=600_000, cuts=1) as proxy:
        sshd.add_known_port(proxy.port)
        location = Location.parse(sshd.url(str(tree), port=proxy.port))
        retries = []
        with Connection(location) as conn:
            got = download(conn, str(tree / CAMERA_FILE), tmp_path / "out" / "video.mp4", on_retry=retries.append, backoff_s=0.05)
    assert proxy.cut_count == 1 and proxy.connections == 2
    assert got.reconnects == 1 and len(retries) == 1 and "connection lost at byte" in retries[0]
    assert got.size == size and got.path.read_bytes() == (tree / CAMERA_FILE).read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["video.mp4"]


def test_big_file_is_downloaded_over_several_ticks_within_the_time_budget(env, sshd, tmp_path):
    tree = tmp_path / "farm_server"
    target = tree / CAMERA_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(os.urandom(300_000))
    age(target)
    sources = parse_sources(f"barn={sshd.url(str(tree))}/", tmp_path)
    root, log, state = StorageRoot(tmp_path / "home"), Log(), None
    _, state, _ = _tick(root, sources, state, time.time(), 2, log, budget_s=0)
    partial_sizes, arrivals = [], []
    for _ in range(40):  # a budget of 0: each tick takes one read and stops
        arrivals, state, waiting = _tick(root, sources, state, time.time(), 2, log, budget_s=0)
        if arrivals:
            break
        (partial,) = (root.home / INCOMING).glob(".tmp-*.part")
        partial_sizes.append(partial.stat().st_size)
        assert waiting == 1 and not list((root.home / INCOMING).glob("*.mp4"))  # nothing partial in place
    assert len(partial_sizes) >= 2 and partial_sizes == sorted(partial_sizes) and partial_sizes[-1] < 300_000
    (arrival,) = arrivals
    staged = root.home / INCOMING / f"{arrival.outcome.registration.sha256}.mp4"
    assert staged.read_bytes() == target.read_bytes() and not list((root.home / INCOMING).glob(".tmp-*"))


def test_connection_that_keeps_dropping_fails_in_one_line_and_leaves_nothing(env, sshd, tmp_path):
    tree = big_file(tmp_path)
    out = tmp_path / "out"
    with servers.CuttingProxy(sshd.port, cut_after=300_000, cuts=100) as proxy:
        sshd.add_known_port(proxy.port)
        with Connection(Location.parse(sshd.url(str(tree), port=proxy.port))) as conn:
            with pytest.raises(RemoteError) as err:
                download(conn, str(tree / CAMERA_FILE), out / "video.mp4", retries=2, backoff_s=0.05)
    assert "download failed after 2 retries" in str(err.value) and "\n" not in str(err.value)
    assert list(out.iterdir()) == []  # no partial file, not even a temporary one


def test_vanished_file_is_a_one_line_error(env, sshd, tmp_path):
    with Connection(Location.parse(sshd.url(str(tmp_path)))) as conn:
        with pytest.raises(VanishedError) as err:
            download(conn, str(tmp_path / "gone.mp4"), tmp_path / "x.mp4")
    assert "vanished" in str(err.value) and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("fault", ["wrong_key", "wrong_password", "unknown_host_key", "closed_port"])
def test_refused_or_unreachable_source_warns_in_one_line_and_others_carry_on(env, sshd, s3, tmp_path, footage, fault):
    tree = farm_tree(tmp_path, footage)
    fs = bucket(s3, f"farm-{fault.replace('_', '-')}")
    fs.put_file(str(footage), f"farm-{fault.replace('_', '-')}/FARM_S3/D03/202503030300_D03.mp4")
    sftp_url = sshd.url(str(tree))
    if fault == "wrong_key":
        env.setenv("VITCOW_SFTP_KEY", str(sshd.other_key))
        expected = "authentication refused"
    elif fault == "wrong_password":
        env.delenv("VITCOW_SFTP_KEY")
        env.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
        env.setenv("VITCOW_SFTP_PASSWORD", "not-the-password")
        expected = "authentication refused"
    elif fault == "unknown_host_key":
        env.setenv("VITCOW_SFTP_KNOWN_HOSTS", str(tmp_path / "empty_known_hosts"))
        expected = "host key unknown"
    else:
        sftp_url = sshd.url(str(tree), port=servers.free_port())
        expected = "cannot connect"
    sources = parse_sources(f"barn={sftp_url}/,bucket=s3://farm-{fault.replace('_', '-')}/,local={tmp_path / 'landing'}", tmp_path)
    root, log = StorageRoot(tmp_path / "home"), Log()
    state, now = None, time.time() + 10  # the bucket's object was written just now
    _, state, _ = _tick(root, sources, state, now, 2, log)
    arrivals, state, _ = _tick(root, sources, state, now, 2, log)
    assert [a.file.source for a in arrivals] == ["bucket"], log.lines  # the bucket was not held up
    barn = [w for w in log.warnings() if w.startswith("source barn:")]
    assert len(barn) == 2 and all(expected in w and "\n" not in w for w in barn)
    assert "not-the-password" not in " ".join(log.warnings())
    if fault == "unknown_host_key":  # the explicit opt-out connects
        env.setenv("VITCOW_SFTP_NO_HOST_KEY_CHECK", "1")
        _, state, waiting = _tick(StorageRoot(tmp_path / "fresh_home"), sources, None, now, 2, Log())
        assert waiting == 2  # both sources listed (first look)


def test_cli_wrong_key_fails_one_line_and_local_file_still_runs(env, sshd, tmp_path, footage):
    tree = farm_tree(tmp_path, footage)
    env.setenv("VITCOW_SFTP_KEY", str(sshd.other_key))
    proc = _vitcow(["run", sshd.url(str(tree / CAMERA_FILE)), str(footage), "--backend", "motion", "--json"], tmp_path / "home")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    bad, good = report["videos"]
    assert bad["status"] == "failed" and "authentication refused" in bad["error"] and "\n" not in bad["error"]
    assert good["status"] == "success"


# --- publishing ---------------------------------------------------------------------------


def test_crafted_farm_or_partition_key_cannot_leave_the_destination(tmp_path):
    for farm in ("..", "../../etc", "/abs", "a/../../b", "", None, "..\\..", "\x00"):
        target = destination_of("s3://lab/pub", farm, "video1")
        assert target.uri.startswith("s3://lab/pub/") and target.path.count("/") == 2 and ".." not in target.path.split("/")
    for key in ("../x", "..", "a/b", "/etc", ".hidden"):
        with pytest.raises(ValueError):
            destination_of("s3://lab/pub", "FARM", key)
    with pytest.raises(ValueError):
        Location.parse("sftp://u@h/base").child("..")


def test_republish_replaces_stale_files_and_remove_dropped_ones(instance, env, sshd, tmp_path, footage):
    """Through SFTP: a second publish after a re-run with fewer crops replaces and removes."""
    sensor = Sensor(tmp_path, instance, str(tmp_path / "landing"))
    (tmp_path / "landing").mkdir()
    age(Path(shutil.copyfile(footage, tmp_path / "landing" / "cam.mp4")))
    sensor.tick()
    (request,) = sensor.tick().run_requests
    key = request.partition_key
    assert sensor.run(key).success
    layout = sensor.storage.video(key)
    dest = sshd.url(str(tmp_path / "published"))
    first = publish_outputs(layout, key, "FARM A/../x", dest)
    assert first.destination == dest + f"/FARM_A_.._x/{key}"  # one plain folder name
    published_root = Path(Location.parse(first.destination).path)
    assert published_root.parent.parent == tmp_path / "published"
    assert not list(published_root.rglob(".tmp-*"))
    again = publish_outputs(layout, key, "FARM A/../x", dest)
    assert again.uploaded == [] and len(again.skipped) == len(first.uploaded)

    crops = pq.read_table(layout.crops_table)
    dropped = Path(crops["crop_path"][0].as_py())
    kept = crops.slice(1)
    from vitcow_assets.media.parquet import write_table

    write_table(layout.crops_table, kept)  # as if a re-run found one object fewer
    dropped.unlink()
    third = publish_outputs(layout, key, "FARM A/../x", dest)
    assert [u.rsplit("/", 2)[-2:] for u in third.uploaded] == [["crops", "crops.parquet"]]
    assert len(third.removed) == 1 and not (published_root / dropped.relative_to(layout.root)).exists()
    index = json.loads((published_root / "published.json").read_text())
    assert len([k for k in index if k.endswith(".mp4")]) == kept.num_rows


# --- CLI ----------------------------------------------------------------------------------


def _vitcow(args, home, settle_seconds: float = 60, **kwargs):
    env = {**os.environ, "VITCOW_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"), "VITCOW_SETTLE_SECONDS": str(settle_seconds)}
    env.pop("VITCOW_SAM3_CHECKPOINT", None)
    return subprocess.run([sys.executable, "-m", "vitcow_assets.cli", *args], env=env, capture_output=True, text=True, timeout=300, **kwargs)


def test_cli_runs_a_remote_folder_and_publishes_with_json_uris(env, sshd, s3, tmp_path, footage):
    tree = farm_tree(tmp_path, footage)
    growing = tree / "FARM_A/D02/202501010900_D02.mp4"
    growing.parent.mkdir(parents=True)
    growing.write_bytes(footage.read_bytes()[:50_000])  # just modified: still arriving
    fs = bucket(s3, "cli-pub")
    proc = _vitcow(["run", sshd.url(str(tree)) + "/", "--backend", "motion", "--publish", "s3://cli-pub/out", "--json"], tmp_path / "home")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    by_status = {v["status"]: v for v in report["videos"]}
    assert set(by_status) == {"success", "waiting"} and report["failed"] == 0
    assert by_status["waiting"]["path"].endswith("202501010900_D02.mp4")
    done = by_status["success"]
    assert done["path"] == sshd.url(str(tree / CAMERA_FILE))
    uris = done["published_crops"]
    assert uris and len(uris) == len(done["crop_videos"])
    assert all(u.startswith(f"s3://cli-pub/out/FARM_A/{done['partition_key']}/crops/") and fs.exists(u) for u in uris)


def test_cli_run_right_after_an_sftp_upload_waits_for_it_and_succeeds(env, sshd, tmp_path, footage):
    """Upload through the real sshd, then ``vitcow run`` that file at once: the CLI applies
    the sensor's settle rule (it looks again until the file is unchanged) instead of refusing."""
    from vitcow_assets.remote.locations import Location
    from vitcow_assets.remote.transfer import Connection

    tree = tmp_path / "uploads"
    target = tree / CAMERA_FILE
    target.parent.mkdir(parents=True)
    with Connection(Location.parse(sshd.url(str(tree)))) as conn:
        conn.fs.put(str(footage), str(target))
    proc = _vitcow(["run", sshd.url(str(target)), "--backend", "motion", "--json"], tmp_path / "home", settle_seconds=2)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "still being written" not in proc.stderr + proc.stdout
    (video,) = json.loads(proc.stdout)["videos"]
    assert video["status"] == "success" and video["crop_videos"]
    shas = set(pq.read_table(video["crops_manifest"], columns=["source_sha256"])["source_sha256"].to_pylist())
    assert shas == {hashlib.sha256(footage.read_bytes()).hexdigest()}  # all of the upload, not a part
