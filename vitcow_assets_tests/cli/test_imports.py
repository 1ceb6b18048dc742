"""Commands that need no Dagster run never import it (importing Dagster costs about 1.4 s of
CPU on every call): parsing and ``--help`` of every command, and running ``provenance``,
``tracks`` and ``eval frames``, each checked in a fresh interpreter."""

import json
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest

from vitcow_assets.cli.evaluate import export_folder
from vitcow_testbed.synthetic_catalog import synthetic_catalog

#: argument lists parsed (not run): every command that can answer without a Dagster run
PARSED = [
    ["provenance", "abcdef123456"],
    ["tracks", "video_1", "--track", "3"],
    ["label", "--port", "9000", "--require-tokens"],
    ["label", "assign", "--annotators", "a,b", "--per-farm", "3"],
    ["labels", "import", "f.csv", "--annotator", "a"],
    ["labels", "export", "f.csv"],
    ["labels", "agreement", "--classes"],
    ["labels", "token", "alice", "--role", "reviewer"],
    ["labels", "conflicts", "--all"],
    ["labels", "decide", "c1", "Lying", "--reviewer", "r"],
    ["labels", "gold", "import", "g.csv"],
    ["eval", "frames", "out", "--dataset", "d"],
    ["eval", "embed", "checkpoint.pth", "--encoder-device", "cpu"],
    ["dataset", "build", "out"],
    ["run", "video.mp4", "--backend", "motion"],
]
HELP = [[], ["provenance"], ["tracks"], ["label"], ["label", "assign"], ["labels"], ["labels", "token"], ["eval"], ["eval", "frames"], ["eval", "embed"],
        ["dataset", "build"], ["run"], ["init"]]


def _fresh(script: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120, env=env)


def test_parsing_and_help_of_every_command_import_no_dagster():
    proc = _fresh(f"""
        import contextlib, io, json, sys
        import vitcow_assets.cli as cli
        found = []
        for argv in {PARSED!r}:
            args = cli.build_parser().parse_args(argv)
            assert args.func is not None, argv
            found.append(("parse " + " ".join(argv), "dagster" in sys.modules))
        for argv in {HELP!r}:
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
                try:
                    cli.main(argv + ["--help"])
                except SystemExit as exc:
                    assert exc.code == 0, (argv, exc.code)
            assert "usage: vitcow" in out.getvalue(), argv
            found.append(("help " + " ".join(argv), "dagster" in sys.modules))
        print(json.dumps(found))
    """)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert len(found) == len(PARSED) + len(HELP)
    assert [step for step, imported in found if imported] == []


def test_provenance_tracks_and_eval_frames_run_without_dagster(tmp_path):
    home = tmp_path / "home"
    synthetic_catalog(home, clips=2, objects=1, frames=6)
    crop = pq.read_table(home / "catalog" / "crops.parquet").to_pylist()[0]
    env = {"VITCOW_HOME": str(home), "PATH": "/usr/bin:/bin", "VITCOW_PAGES_URL": "http://127.0.0.1:8765"}
    proc = _fresh(f"""
        import contextlib, io, json, sys
        from vitcow_assets.cli import main
        runs = []
        for argv in ([ "provenance", {crop["crop_path"]!r}], ["provenance", {crop["crop_id"][:8]!r}], ["tracks", "va"],
                     ["eval", "frames", {str(tmp_path / "frames")!r}, "--dataset", {str(tmp_path / "no-dataset")!r}]):
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
                code = main(argv)
            runs.append({{"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(), "dagster": "dagster" in sys.modules}})
        print(json.dumps(runs))
    """, env)
    assert proc.returncode == 0, proc.stderr
    by_path, by_id, tracks, frames = json.loads(proc.stdout)
    assert [r["dagster"] for r in (by_path, by_id, tracks, frames)] == [False] * 4
    assert by_path["code"] == by_id["code"] == 0 and json.loads(by_path["out"]) == json.loads(by_id["out"])
    assert json.loads(by_id["out"])["crop_page"] == f"http://127.0.0.1:8765/crops/{crop['crop_id']}"
    # the commands ran to their answers: no tracks table in this catalog, no dataset there
    assert tracks["code"] == 2 and "no tracks table for va" in tracks["err"]
    assert frames["code"] == 2 and "no-dataset" in frames["err"]


def test_eval_frames_finds_the_dataset_resources_folder_without_dagster(tmp_path):
    from vitcow_assets.defs.datasets import dataset_from_environment
    from vitcow_assets.defs.resources import storage_from_environment

    for environ in ({"VITCOW_HOME": str(tmp_path / "h")}, {"VITCOW_HOME": str(tmp_path / "h"), "VITCOW_DATASET_DIR": str(tmp_path / "ds")}):
        resource = dataset_from_environment(environ).export_dir(storage_from_environment(environ))
        assert export_folder(None, environ) == resource.absolute()
    assert export_folder(str(tmp_path / "given"), {"VITCOW_DATASET_DIR": "elsewhere"}) == tmp_path / "given"


def test_main_in_another_programs_process_leaves_its_sigpipe_alone(monkeypatch, capsys):
    """Only the ``vitcow`` program dies quietly on a closed pipe: ``main`` called in-process
    (this test run, a notebook) must not, or a socket closed under the host process (a dropped
    SFTP connection in a later test) kills it with SIGPIPE instead of raising."""
    import signal

    from vitcow_assets import cli

    before = signal.getsignal(signal.SIGPIPE)
    try:
        with pytest.raises(SystemExit):
            cli.main(["--help"])
        assert signal.getsignal(signal.SIGPIPE) == before == signal.SIG_IGN  # as Python sets it
        monkeypatch.setattr(cli, "main", lambda: 0)
        assert cli.console() == 0 and signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGPIPE, before)
