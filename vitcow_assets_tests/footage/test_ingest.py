"""Registering a video again writes the same record."""

import json
import shutil

from vitcow_assets.footage.ingest import write_record
from vitcow_assets.footage.layout import VideoLayout
from vitcow_assets.media.hashing import sha256_file


def test_registering_the_same_file_again_keeps_its_first_time_and_bytes(tmp_path, synthetic_video):
    layout = VideoLayout(tmp_path / "v")
    layout.root.mkdir()
    stored = layout.source_copy(synthetic_video.suffix)
    shutil.copyfile(synthetic_video, stored)
    sha = sha256_file(stored)
    first = write_record(layout, "v", str(synthetic_video), stored, "copy", sha)
    record = json.loads(layout.raw_video_json.read_text())
    record["registered_at"] = "2020-01-01T00:00:00+00:00"  # registered long ago
    layout.raw_video_json.write_text(json.dumps(record, indent=2))
    written = layout.raw_video_json.read_bytes()

    again = write_record(layout, "v", str(synthetic_video), stored, "copy", sha)
    assert again.registered_at == "2020-01-01T00:00:00+00:00"
    assert layout.raw_video_json.read_bytes() == written
    assert {**first.as_dict(), "registered_at": again.registered_at} == again.as_dict()

    moved = write_record(layout, "v", "/elsewhere/other.mp4", stored, "copy", sha)  # another source: a new record
    assert moved.registered_at != "2020-01-01T00:00:00+00:00"
    assert json.loads(layout.raw_video_json.read_text())["source_path"] == "/elsewhere/other.mp4"
