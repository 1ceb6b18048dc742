"""`vitcow eval` on a small synthetic site (a dataset export built by the real pipeline,
embeddings tables of the crop_embeddings contract): each command prints one table, or with
`--json` one document; bad input is one line (a bad predictions file one line per bad row),
exit 2, nothing stored. The commands run in this process (``cli.main``, its own storage
root and instance); the refused predictions file goes through the installed entry point."""

import json
import subprocess

import pyarrow.parquet as pq
import pytest

from vitcow_assets.evaluation.inputs import read_dataset
from vitcow_assets_tests.evaluation.predictions_files import predicted, seed_form
from vitcow_assets_tests.evaluation.synthetic_site import make_site
from vitcow_assets_tests.helpers import cli_env, run_cli

ROW_KEYS = {"setting", "metric", "k", "hit_micro", "hit_macro", "chance_micro", "chance_macro", "hit_micro_se", "hit_macro_se", "chance_micro_se", "chance_macro_se"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("evalcli"))


@pytest.fixture
def vitcow(site, monkeypatch, capsys):
    """``vitcow ARGS`` in this process against the site: (exit status, stdout, stderr)."""
    from vitcow_assets.cli import main

    for name, value in cli_env(site["root"].home).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VITCOW_DATASET_DIR", raising=False)

    def run(args: list[str]) -> subprocess.CompletedProcess:
        capsys.readouterr()
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def test_retrieval_prints_one_table_and_one_json_document(site, vitcow):
    table = vitcow(["eval", "retrieval", "separable", "--repeats", "3"])
    assert table.returncode == 0, table.stderr[-2000:]
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:5] == ["setting", "metric", "k", "hit_micro", "chance_micro"] and len(lines) == 21
    assert all(line.split()[3] == "1.000" and float(line.split()[4]) < 1 for line in lines[1:])
    done = vitcow(["eval", "retrieval", "random", "--repeats", "3", "--json", "--dataset", str(site["export"])])
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert document["checkpoint_sha256"] == site["checkpoints"]["random"]
    assert document["dataset_fingerprint"] == read_dataset(site["export"]).fingerprint and document["code_version"]
    assert len(document["rows"]) == 20 and all(ROW_KEYS <= set(r) for r in document["rows"])
    stored = pq.read_table(f"{document['results_dir']}/retrieval.parquet").to_pylist()
    assert [r["hit_micro"] for r in document["rows"]] == [r["hit_micro"] for r in stored]


def test_probe_prints_the_curve_over_subset_sizes(vitcow):
    table = vitcow(["eval", "probe", "separable", "--cs", "0.1,1"])
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:4] == ["subset_size", "train_crops", "repeats", "balanced_accuracy"]
    done = vitcow(["eval", "probe", "separable", "--cs", "0.1,1", "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert [r["subset_size"] for r in document["curve"]] == ["30", "90", "100000", "train"]
    assert all(r["balanced_accuracy"] >= 0.95 for r in document["curve"]) and len(document["runs"]) == 7
    assert any("capped" in note for note in document["notes"])


def test_predictions_print_the_scorecard_and_a_bad_file_one_line_per_row(site, vitcow, tmp_path):
    export = read_dataset(site["export"])
    good = seed_form(tmp_path / "predictions_full.csv", predicted(export.split("test"), len(export.classes)), len(export.classes))
    done = vitcow(["eval", "predictions", str(good)])
    assert done.returncode == 0, done.stderr[-2000:]
    head, *table = done.stdout.strip().splitlines()
    assert head.startswith(f"{export.split('test').num_rows} test crops: accuracy 0.800") and len(table) == 1 + len(export.classes)
    lines = good.read_text().splitlines()
    lines[1] = "/nowhere.mp4" + lines[1][lines[1].index(","):]
    fields = lines[2].split(",")
    lines[2] = ",".join(fields[:2] + ["Flying"] + fields[3:])
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    refused = run_cli(["eval", "predictions", str(bad), "--name", "bad-model"], site["root"].home)
    assert refused.returncode == 2 and refused.stdout == ""
    errors = refused.stderr.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith(f"vitcow: {bad}: ") for e in errors)
    assert "line 2 " in errors[0] and "line 3 " in errors[1] and "have no prediction" in errors[2]
    assert not (site["root"].evaluation_dir / "predictions" / "bad-model").exists()


def test_bad_input_is_one_line(vitcow, tmp_path):
    missing = vitcow(["eval", "retrieval", "never-embedded"])
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "vitcow eval embed" in missing.stderr
    no_dataset = vitcow(["eval", "retrieval", "random", "--dataset", str(tmp_path)])
    assert no_dataset.returncode == 2 and no_dataset.stderr.count("\n") == 1 and "dataset.json is missing" in no_dataset.stderr
    flag = vitcow(["eval", "probe", "random", "--cs", "0"])
    assert flag.returncode == 2 and "--cs" in flag.stderr
