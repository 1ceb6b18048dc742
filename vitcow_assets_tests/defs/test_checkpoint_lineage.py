"""The checkpoint's identity in lineage: its sha256 in the masks metadata, the crops manifest,
the crop catalog and ``vitcow provenance``; and in ``object_masks``' data version, so that a
new checkpoint at the same path makes the masks stale (a real instance, SAM3 at test size)."""

import hashlib
import importlib.util
import json
import os

import dagster as dg
import pyarrow.parquet as pq
import pytest

if importlib.util.find_spec("sam3") is None:
    pytest.skip("sam3 is not installed", allow_module_level=True)

import torch  # noqa: E402
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext  # noqa: E402
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus  # noqa: E402
from dagster._core.definitions.observe import observe  # noqa: E402
from dagster._time import get_current_datetime  # noqa: E402

from vitcow_assets.cli.queries import cmd_provenance  # noqa: E402
from vitcow_assets.definitions import build_resources, defs  # noqa: E402
from vitcow_assets.defs.assets import model_checkpoint  # noqa: E402
from vitcow_assets.defs.resources import forget_cached_models  # noqa: E402
from vitcow_assets.footage.layout import StorageRoot  # noqa: E402
from vitcow_assets.segmenters.sam3 import find_bpe_path  # noqa: E402
from vitcow_assets.segmenters.sam3_cpu import cpu_mode, install  # noqa: E402
from vitcow_assets_tests.helpers import register  # noqa: E402
from vitcow_testbed.sam3_tiny import tiny_builder, write_tiny_checkpoint  # noqa: E402
from vitcow_testbed.synthetic import write_video  # noqa: E402

MASKS, CHECKPOINT = dg.AssetKey("object_masks"), dg.AssetKey("model_checkpoint")


@pytest.fixture()
def sam3_env(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    install()
    checkpoint = tmp_path / "sam3.pt"
    with tiny_builder():
        with cpu_mode():
            write_tiny_checkpoint(checkpoint, find_bpe_path(), seed=0)
        for name, value in {"VITCOW_HOME": str(tmp_path / "home"), "VITCOW_SAM3_CHECKPOINT": str(checkpoint), "VITCOW_SAM3_DEVICE": "cpu",
                            "VITCOW_SAM3_SCORE_THRESHOLD": "0", "VITCOW_SAM3_NEW_OBJECT_THRESHOLD": "1.01"}.items():
            monkeypatch.setenv(name, value)
        forget_cached_models()
        yield checkpoint
        forget_cached_models()
    torch.set_num_threads(threads)


def _status(instance, key: str):
    asset_graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None), instance=instance, asset_graph=asset_graph)
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=asset_graph, loading_context=view)
    return resolver.get_status(MASKS, key), resolver.get_stale_causes(MASKS, key)


def _observe(instance, home) -> None:
    """Observe the checkpoint alone (as "Observe sources" in the UI does)."""
    result = observe([model_checkpoint], instance=instance, resources=build_resources(backend="sam3", home=str(home)))
    assert result.success


def test_the_checkpoint_sha256_is_in_every_lineage_record_and_a_new_file_makes_the_masks_stale(sam3_env, tmp_path, capsys):
    home = tmp_path / "home"
    sha = hashlib.sha256(sam3_env.read_bytes()).hexdigest()
    video = write_video(tmp_path / "pen.mp4", frames=12, width=160, height=120)
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        run = defs.resolve_job_def("process_video").execute_in_process(
            instance=instance, partition_key=key, resources=build_resources(backend="sam3", home=str(home)),
            run_config={"ops": {"clips": {"config": {"frames_per_clip": 3, "max_clips": 2, "write_clip_files": False}}}},
        )
        assert run.success
        observed = instance.get_latest_data_version_record(CHECKPOINT)
        assert observed.asset_observation.data_version == sha
        layout = StorageRoot(home).video(key)
        assert pq.read_schema(layout.masks_table).metadata[b"vitcow.checkpoint_sha256"].decode() == sha
        crops = pq.read_table(layout.crops_table).to_pylist()
        assert crops and {(c["model_checkpoint"], c["model_checkpoint_sha256"]) for c in crops} == {(str(sam3_env), sha)}
        catalog = defs.resolve_job_def("crop_catalog_job").execute_in_process(instance=instance, resources=build_resources(home=str(home)))
        assert catalog.success and set(pq.read_table(StorageRoot(home).catalog_table)["model_checkpoint_sha256"].to_pylist()) == {sha}
        capsys.readouterr()
        assert cmd_provenance(type("Args", (), {"crop": crops[0]["crop_path"]})()) == 0
        assert json.loads(capsys.readouterr().out)["model_checkpoint_sha256"] == sha

        assert _status(instance, key)[0] == StaleStatus.FRESH
        os.utime(sam3_env)  # the same bytes touched: observed again, the same version
        _observe(instance, home)
        assert _status(instance, key)[0] == StaleStatus.FRESH
        with tiny_builder(), cpu_mode():  # fine-tuned weights dropped at the same path
            write_tiny_checkpoint(sam3_env, find_bpe_path(), seed=1)
        _observe(instance, home)
        assert instance.get_latest_data_version_record(CHECKPOINT).asset_observation.data_version == hashlib.sha256(sam3_env.read_bytes()).hexdigest() != sha
        status, causes = _status(instance, key)
        assert status == StaleStatus.STALE
        assert [(c.reason, c.dependency.asset_key) for c in causes] == [("has a new dependency data version", CHECKPOINT)]
