"""A checkpoint's sha256 is read once per file version, for every process."""

import hashlib
import os
import subprocess
import sys

from vitcow_assets.media import hash_cache
from vitcow_assets.media.hash_cache import cached_sha256


def test_read_once_per_file_version_and_again_when_the_file_changes(tmp_path, monkeypatch):
    checkpoint = tmp_path / "sam3.pt"
    checkpoint.write_bytes(b"weights v1" * 1000)
    reads = []
    real = hash_cache.sha256_file
    monkeypatch.setattr(hash_cache, "sha256_file", lambda path: reads.append(path) or real(path))
    monkeypatch.setattr(hash_cache, "_MEMO", {})
    cache = tmp_path / "cache"
    first = cached_sha256(checkpoint, cache)
    assert first == hashlib.sha256(b"weights v1" * 1000).hexdigest()
    assert cached_sha256(checkpoint, cache) == first and len(reads) == 1
    # another process: the cache folder answers, the file is not read again
    code = f"from vitcow_assets.media import hash_cache as h; h.sha256_file = None; print(h.cached_sha256({str(checkpoint)!r}, {str(cache)!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == first, done.stderr
    # a new file at the same path (same size, renamed into place) is another version
    replacement = tmp_path / "new.pt"
    replacement.write_bytes(b"weights v2" * 1000)
    os.replace(replacement, checkpoint)
    second = cached_sha256(checkpoint, cache)
    assert second == hashlib.sha256(b"weights v2" * 1000).hexdigest() != first and len(reads) == 2


def test_a_file_changing_while_hashed_is_not_remembered(tmp_path, monkeypatch):
    checkpoint = tmp_path / "sam3.pt"
    checkpoint.write_bytes(b"a" * 100)

    def read_while_written(path):
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        with open(path, "ab") as handle:  # a copy still arriving
            handle.write(b"b")
        return digest

    monkeypatch.setattr(hash_cache, "sha256_file", read_while_written)
    monkeypatch.setattr(hash_cache, "_MEMO", {})
    cached_sha256(checkpoint, tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.json")) == []


def test_a_model_folder_has_one_sha256_from_its_files_names_and_bytes(tmp_path):
    from vitcow_assets.media.hash_cache import cached_folder_sha256

    folder = tmp_path / "sam3-hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "sam3_video"}')
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    (folder / ".cache").mkdir()  # hidden and not files: left out
    cache = tmp_path / "checksums"
    first = cached_folder_sha256(folder, cache)
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(folder.glob("[!.]*")))
    assert first == hashlib.sha256(lines.encode()).hexdigest()
    assert cached_folder_sha256(folder, cache) == first
    (folder / "model.safetensors").write_bytes(b"fine-tuned" * 100)  # new weights, same names
    second = cached_folder_sha256(folder, cache)
    assert second != first
    (folder / "tokenizer.json").write_text("{}")  # a file more
    assert cached_folder_sha256(folder, cache) not in (first, second)
