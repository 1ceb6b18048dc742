"""Reading what a checkpoint file or folder is, in a second, without building a model."""

import json

import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from vitcow_assets.core.checkpoint_kinds import CheckpointKind  # noqa: E402
from vitcow_assets.segmenters.checkpoints import CheckpointError, inspect_checkpoint, read_state_dict  # noqa: E402

STATE = {"detector.w": torch.arange(4.0), "tracker.freqs": torch.ones(3, dtype=torch.complex64)}


def test_pytorch_flat_wrapped_and_safetensors_files(tmp_path):
    torch.save(STATE, tmp_path / "flat.pt")
    torch.save({"model": STATE, "epoch": 3}, tmp_path / "wrapped.pt")
    safetensors_torch.save_file(STATE, tmp_path / "mirror.bin")  # told by its bytes, not its name
    for name, form, wrapped in (("flat.pt", "pytorch", False), ("wrapped.pt", "pytorch", True), ("mirror.bin", "safetensors", False)):
        info = inspect_checkpoint(tmp_path / name)
        assert (info.format, info.kind, info.wrapped, sorted(info.keys)) == (form, CheckpointKind.SAM3_RELEASE, wrapped, sorted(STATE))
        state = read_state_dict(info)
        assert all(torch.equal(state[k], v) for k, v in STATE.items())


def test_a_transformers_folder_and_its_sharded_index(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "sam3_video"}))
    index = {"weight_map": {"detector_model.a": "model-00001.safetensors", "tracker_model.b": "model-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    info = inspect_checkpoint(tmp_path)
    assert (info.format, info.kind) == ("folder", CheckpointKind.TRANSFORMERS)


def test_what_is_no_checkpoint_fails_in_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    (tmp_path / "empty").mkdir()
    (tmp_path / "list.pt").write_bytes(b"")
    torch.save([1, 2], tmp_path / "list.pt")
    cases = {
        tmp_path / "absent.pt": "does not exist",
        tmp_path / "junk.pt": "is neither a PyTorch checkpoint (torch.save) nor a safetensors file (17 bytes)",
        tmp_path / "empty": "is a folder, not a checkpoint file or a transformers model folder (it holds: nothing)",
        tmp_path / "list.pt": "holds a list, not a state dict of tensors",
    }
    for path, message in cases.items():
        with pytest.raises(CheckpointError) as info:
            inspect_checkpoint(path)
        assert str(info.value) == f"{str(path)!r} {message}"
