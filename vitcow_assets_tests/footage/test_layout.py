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
