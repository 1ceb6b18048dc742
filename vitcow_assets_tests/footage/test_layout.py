import hashlib
import os

import pytest

from vitcow_assets.footage.registry import Registry
from vitcow_assets.footage.layout import StorageRoot, check_partition_key, partition_key_for


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.mp4", "/abs/path.mp4", "barn cam 1.mp4", "vache_étable.mp4", "牛舍カメラ.mp4", "...mp4", ".hidden.mp4"],
)
def test_partition_keys_are_safe_and_nonempty(name):
    key = partition_key_for(os.path.basename(name))
    assert check_partition_key(key) == key
    assert "/" not in key and not key.startswith(".")


def test_plain_names_keep_their_stem_and_folded_names_stay_distinct():
    assert partition_key_for("202502052200_D01.mp4") == "202502052200_D01"
    assert partition_key_for("a b.mp4") != partition_key_for("a_b.mp4")
    assert partition_key_for("vache_étable.mp4").startswith("vache_etable-")


@pytest.mark.parametrize("key", ["../x", "a/b", ".x", "", "x" * 200])
def test_bad_keys_are_rejected(key, tmp_path):
    with pytest.raises(ValueError):
        StorageRoot(tmp_path).video(key)


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


def test_registry_statuses(tmp_path):
    registry = Registry(StorageRoot(tmp_path / "home"))
    a = _file(tmp_path / "cam.mp4", b"one")
    first = registry.register(a, "sha-one")
    assert (first.status, first.registration.key) == ("new", "cam")
    assert registry.register(a, "sha-one").status == "unchanged"
    changed = registry.register(a, "sha-two")
    assert (changed.status, changed.registration.key) == ("changed", "cam")
    assert registry.get("cam").sha256 == "sha-two"
    assert (first.registration.revision, changed.registration.revision) == (1, 2)
    assert registry.register(a, "sha-one").registration.revision == 3  # restored bytes are a new revision
    copy = _file(tmp_path / "copy.mp4", b"one")
    dup = registry.register(copy, "sha-one")
    assert (dup.status, dup.registration.key) == ("duplicate", "cam")
    assert registry.get("copy") is None
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    clash = registry.register(_file(other_dir / "cam.mp4", b"three"), "abcdef0123456789")
    assert (clash.status, clash.registration.key) == ("new", "cam-abcdef01")
    assert {r.key for r in registry.all()} == {"cam", "cam-abcdef01"}


def test_registry_written_before_its_indexes_is_indexed_once_and_decides_the_same(tmp_path):
    import json

    home = StorageRoot(tmp_path / "home")
    old = Registry(home)
    old.folder.mkdir(parents=True)
    a, b = _file(tmp_path / "cam.mp4", b"one"), _file(tmp_path / "other.mp4", b"two")
    for key, path, sha in (("cam", a, "sha-one"), ("other", b, "sha-two")):  # records only, as older versions wrote them
        record = {"key": key, "source_path": str(path), "sha256": sha, "size": 3, "registered_at": "2024-01-01T00:00:00+00:00"}
        (old.folder / f"{key}.json").write_text(json.dumps(record))
    registry = Registry(home)
    assert registry.register(a, "sha-one").status == "unchanged"
    assert (registry.index / "complete").exists()
    copy = registry.register(_file(tmp_path / "copy.mp4", b"two"), "sha-two")
    assert (copy.status, copy.registration.key) == ("duplicate", "other")
    assert registry.by_source(str(b)).key == "other" and registry.by_sha256("sha-one").key == "cam"


def test_an_index_entry_without_its_record_misleads_no_one(tmp_path):
    registry = Registry(StorageRoot(tmp_path / "home"))
    a = _file(tmp_path / "cam.mp4", b"one")
    first = registry.register(a, "sha-one")
    # a crash after the indexes were written and before the record: the index points at a
    # key whose record says otherwise
    registry._write_entry("path", hashlib.sha256(str(tmp_path / "b.mp4").encode()).hexdigest(), "cam")
    registry._write_entry("sha256", "sha-three", "cam")
    b = registry.register(_file(tmp_path / "b.mp4", b"three"), "sha-three")
    assert (b.status, b.registration.key) == ("new", "b")
    assert registry.get("cam") == first.registration
    assert not list(registry.folder.glob(".tmp-*")) and not any(registry.temp.iterdir())
