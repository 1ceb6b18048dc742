"""Each evaluation end to end on the synthetic site: the results land under the checkpoint
and the dataset build's fingerprint, the report lists the sha256 of every file written with
it, and running again writes the same bytes."""

import hashlib
import json

from vitcow_assets.evaluation.runs import run_probe, run_retrieval
from vitcow_assets.evaluation.settings import ProbeSettings, RetrievalSettings


def _files(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_results_are_stored_by_checkpoint_and_build_listed_in_the_report_and_reproducible(site):
    root = site["root"]
    retrieval = run_retrieval(root, "random", site["export"], RetrievalSettings(repeats=3), "0.1.0+gtest")
    probe = run_probe(root, "random", site["export"], ProbeSettings(cs=(0.1, 1.0)), "0.1.0+gtest")
    folder = retrieval.layout.root
    assert folder == probe.layout.root == root.evaluation_dir / "checkpoints" / "random" / retrieval.inputs.export.fingerprint
    first = _files(folder)
    for name in ("retrieval", "probe"):
        report = json.loads((folder / f"{name}.json").read_text())
        assert report["files"] and all(first[f] == digest for f, digest in report["files"].items())
        assert report["checkpoint"]["sha256"] == site["checkpoints"]["random"] and report["dataset"]["fingerprint"] == retrieval.inputs.export.fingerprint
    assert {"retrieval.parquet", "retrieval.png", "probe_runs.parquet", "probe_curve.png", "probe_confusion.png"} <= set(first)
    run_retrieval(root, "random", site["export"], RetrievalSettings(repeats=3), "0.1.0+gtest")
    run_probe(root, "random", site["export"], ProbeSettings(cs=(0.1, 1.0)), "0.1.0+gtest")
    assert _files(folder) == first
