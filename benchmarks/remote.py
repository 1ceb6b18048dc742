"""Pulling and publishing over loopback SFTP against the same work on local files.

Run from the repository root (needs OpenSSH's ``sshd``; says so and exits 0 without it)::

    python -m benchmarks.remote [VIDEO] [--repeats N] [--big-mib M]

VIDEO defaults to ``samples/vtest_sample.mp4``. A temporary ``sshd`` on 127.0.0.1 serves a
farm-layout tree holding the video; a local folder holds the same bytes. Timed (wall clock,
best of ``--repeats``):

1. pull: ``remote.transfer.download`` over SFTP (streamed, hashed while copying) against a
   local copy of the same bytes hashed while copying (the same chunked loop on a local file);
2. publish: ``stages.publishing.publish_outputs`` of the video's outputs (made once by the
   pipeline, motion backend, not timed) to an ``sftp://`` destination against a local
   folder destination; then the idempotent re-publish (nothing uploaded) to each;
3. a ``--big-mib`` file of random bytes pulled over SFTP against a local hashed copy, and
   Python's peak allocation (tracemalloc, in a separate untimed pull) while downloading it
   over SFTP: bounded by the read window, not the file size.

The last line is ``key=value`` pairs; ratios are SFTP / local from the same run.
"""

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def local_copy_hashed(src: Path, dst: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    tmp = dst.with_name(".tmp-" + dst.name)
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        while block := fin.read(chunk):
            fout.write(block)
            digest.update(block)
    os.replace(tmp, dst)
    return digest.hexdigest()


def _pulls(location, remote_file: Path, local_src: Path, out: Path, repeats: int, figures: dict) -> None:
    """SFTP downloads against a local hashed copy of the same file."""
    from vitcow_assets.media.hashing import sha256_file
    from vitcow_assets.remote.transfer import Connection, download

    with Connection(location) as conn:
        conn.fs  # connect outside the timing; reconnect cost shown separately
        figures["pull_sftp_s"] = best(repeats, lambda: download(conn, str(remote_file), out / "sftp.mp4"))

    def connect_and_pull():
        with Connection(location) as conn:
            download(conn, str(remote_file), out / "sftp.mp4")

    figures["pull_sftp_with_connect_s"] = best(repeats, connect_and_pull)
    figures["pull_local_s"] = best(repeats, lambda: local_copy_hashed(local_src, out / "local.mp4"))
    assert sha256_file(out / "sftp.mp4") == sha256_file(out / "local.mp4") == sha256_file(remote_file)


def _pipeline_outputs(tmp: Path, local_src: Path, figures: dict):
    """The pipeline once on the video (not part of any ratio): the outputs to publish."""
    import dagster as dg

    from vitcow_assets.definitions import build_resources, defs
    from vitcow_assets.footage.layout import StorageRoot
    from vitcow_assets.footage.registry import Registry
    from vitcow_assets.media.hashing import sha256_file

    home = tmp / "home"
    os.environ["DAGSTER_HOME"] = str(tmp / "dagster")
    (tmp / "dagster").mkdir()
    with dg.DagsterInstance.ephemeral() as instance:
        key = Registry(StorageRoot(home)).register(local_src, sha256_file(local_src)).registration.key
        instance.add_dynamic_partitions("videos", [key])
        t0 = time.perf_counter()
        result = defs.resolve_job_def("process_video").execute_in_process(
            instance=instance, partition_key=key, resources=build_resources(backend="motion", home=str(home))
        )
        figures["pipeline_s"] = round(time.perf_counter() - t0, 2)
        assert result.success
    layout = StorageRoot(home).video(key)
    figures["crops"] = len(list(layout.crops_dir.rglob("*.mp4")))
    return layout, key


def _publishes(layout, key: str, destinations: dict[str, str], repeats: int, figures: dict) -> None:
    """A fresh publish per repeat, then re-publishing to the same place (nothing uploaded)."""
    from vitcow_assets.stages.publishing import publish_outputs

    for name, dest in destinations.items():
        counter = iter(range(1000))

        def fresh():
            publish_outputs(layout, key, "FARM_A", f"{dest}/run{next(counter)}")

        figures[f"publish_{name}_s"] = best(repeats, fresh)
        publish_outputs(layout, key, "FARM_A", dest)
        again = []
        figures[f"republish_{name}_s"] = best(repeats, lambda: again.append(publish_outputs(layout, key, "FARM_A", dest)))
        assert all(not s.uploaded for s in again)
        figures["published_files"] = len(again[-1].skipped)


def _big_pull(location, tree: Path, out: Path, mib: int, repeats: int, figures: dict) -> None:
    """A large random file over SFTP and locally, and the Python heap's peak while pulling it."""
    from vitcow_assets.remote.transfer import Connection, download

    big = tree / "big.bin"
    with open(big, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    with Connection(location) as conn:
        conn.fs
        figures["big_pull_sftp_s"] = best(repeats, lambda: download(conn, str(big), out / "big.bin"))
    figures["big_pull_local_s"] = best(repeats, lambda: local_copy_hashed(big, out / "big_local.bin"))
    tracemalloc.start()  # slows Python down: memory only, not timed
    with Connection(location) as conn:
        download(conn, str(big), out / "big.bin")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures["big_file_mib"] = mib
    figures["big_pull_peak_python_mib"] = peak / 2**20


def _ratios(figures: dict) -> None:
    figures["pull_ratio_sftp_vs_local"] = figures["pull_sftp_s"] / figures["pull_local_s"]
    figures["publish_ratio_sftp_vs_local"] = figures["publish_sftp_s"] / figures["publish_local_s"]
    figures["pull_and_publish_sftp_s"] = figures["pull_sftp_with_connect_s"] + figures["publish_sftp_s"]
    figures["pull_and_publish_local_s"] = figures["pull_local_s"] + figures["publish_local_s"]
    figures["pull_and_publish_ratio"] = figures["pull_and_publish_sftp_s"] / figures["pull_and_publish_local_s"]
    figures["big_pull_ratio_sftp_vs_local"] = figures["big_pull_sftp_s"] / figures["big_pull_local_s"]
    figures["sftp_pull_mib_per_s"] = figures["big_file_mib"] / figures["big_pull_sftp_s"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(ROOT / "samples" / "vtest_sample.mp4"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=64)
    args = parser.parse_args(argv)

    from vitcow_testbed import servers

    if servers.SSHD is None or servers.SSH_KEYGEN is None:
        print("sshd/ssh-keygen not installed (apt-get install openssh-server): nothing to measure")
        return 0
    from vitcow_assets.remote.locations import Location

    video = Path(args.video)
    figures: dict[str, float | int | str] = {"video_bytes": video.stat().st_size}
    with tempfile.TemporaryDirectory(prefix="vitcow-bench-remote-") as tmpdir:
        tmp = Path(tmpdir)
        server = servers.SshServer(tmp / "sshd").start()
        try:
            os.environ.update(VITCOW_SFTP_KEY=str(server.user_key), VITCOW_SFTP_KNOWN_HOSTS=str(server.known_hosts))
            tree = tmp / "server"
            remote_file = tree / "FARM_A" / "D01" / "202501010600_D01.mp4"
            remote_file.parent.mkdir(parents=True)
            shutil.copyfile(video, remote_file)
            local_src = tmp / "local" / remote_file.name
            local_src.parent.mkdir()
            shutil.copyfile(video, local_src)
            location = Location.parse(server.url(str(tree)))
            out = tmp / "pulled"
            out.mkdir()
            _pulls(location, remote_file, local_src, out, args.repeats, figures)
            layout, key = _pipeline_outputs(tmp, local_src, figures)
            destinations = {"sftp": server.url(str(tmp / "published_sftp")), "local": str(tmp / "published_local")}
            _publishes(layout, key, destinations, args.repeats, figures)
            _big_pull(location, tree, out, args.big_mib, args.repeats, figures)
        finally:
            server.stop()
    _ratios(figures)
    print(f"{'figure':36} value")
    for k, v in figures.items():
        print(f"{k:36} {v:.4g}" if isinstance(v, float) else f"{k:36} {v}")
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
