"""The registered checkpoints: keys from the name and the bytes, the same bytes the same key
wherever they are, changed bytes refused, a folder's digest over its files, and each file
hashed once per version."""

import shutil

import pytest

from vitcow_assets.encoders import digests
from vitcow_assets.encoders.registry import CheckpointRegistry
from vitcow_assets.footage.layout import StorageRoot


def test_a_checkpoint_is_registered_by_its_bytes(tiny_checkpoints, tmp_path):
    registry = CheckpointRegistry(StorageRoot(tmp_path / "home"))
    entry = registry.register(tiny_checkpoints["original_model"])
    assert entry.key == f"pretrain_model-{entry.sha256[:12]}" and entry.layout == "original"
    assert registry.get(entry.key) == entry and registry.verified(entry.key) == entry
    moved = tmp_path / "elsewhere" / "renamed.pth"
    moved.parent.mkdir()
    shutil.copy(tiny_checkpoints["original_model"], moved)
    again = registry.register(moved)
    assert again.key == entry.key and again.path == str(moved) and len(registry.all()) == 1
    other = registry.register(tiny_checkpoints["original_finetuning"])
    assert other.key != entry.key and len(registry.all()) == 2


def test_bytes_changed_since_registration_are_refused(tiny_checkpoints, tmp_path):
    path = tmp_path / "ckpt.pth"
    shutil.copy(tiny_checkpoints["original_model"], path)
    registry = CheckpointRegistry(StorageRoot(tmp_path / "home"))
    entry = registry.register(path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match=f"checkpoint {path} changed since it was registered as {entry.key}"):
        registry.verified(entry.key)
    with pytest.raises(ValueError, match="no checkpoint is registered as nothing-here"):
        registry.verified("nothing-here")


def test_a_folder_s_digest_covers_its_files_and_each_file_is_hashed_once(tiny_checkpoints, tmp_path, monkeypatch):
    folder = tmp_path / "hf"
    shutil.copytree(tiny_checkpoints["transformers_pretraining"], folder)
    reads = []
    real = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda p: reads.append(p) or real(p))
    digests._MEMO.clear()
    registry = CheckpointRegistry(StorageRoot(tmp_path / "home"))
    entry = registry.register(folder)
    assert entry.layout == "transformers" and set(entry.files) == {"config.json", "model.safetensors"} and len(reads) == 2
    digests._MEMO.clear()  # another process: the digests folder remembers
    assert registry.entry_for(folder) == entry and len(reads) == 2
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"num_frames": 4', '"num_frames": 4 '))
    changed = registry.entry_for(folder)
    assert changed.sha256 != entry.sha256 and changed.files["model.safetensors"] == entry.files["model.safetensors"] and len(reads) == 3
