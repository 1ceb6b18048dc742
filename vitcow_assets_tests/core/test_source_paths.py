"""Pure parts of remote storage: path patterns (farm, camera, recording start) and locations."""

import datetime as dt

import pytest

from vitcow_assets.core.source_paths import PathPattern, SourceFields, parse_patterns, source_fields
from vitcow_assets.footage.provenance import source_provenance
from vitcow_assets.remote.locations import Location, LocationError, is_local_folder, parse_sources


def test_default_pattern_reads_the_farm_server_layout():
    fields = source_fields("/srv/footage/FARM_A/D01/202502052200_D01.mp4")
    assert (fields.farm, fields.camera, fields.recorded_at) == ("FARM_A", "D01", dt.datetime(2025, 2, 5, 22, 0))


def test_default_patterns_fall_back_to_the_time_of_day_name_and_the_source_name():
    assert source_fields("/landing/202502052200_D07.mp4").camera == "D07"
    fields = source_fields("/landing/barn_202502052200.mkv", default_farm="north")
    assert (fields.farm, fields.camera, fields.recorded_at) == ("north", None, dt.datetime(2025, 2, 5, 22, 0))
    # a name no pattern matches tells nothing but the source's name, when given
    assert source_fields("/landing/no time here.mp4") == SourceFields(None, None, None)
    assert source_fields("/landing/no time here.mp4", default_farm="north") == SourceFields("north", None, None)
    # camera folder and file name disagree: not the layout, only the name's fields
    fields = source_fields("/srv/FARM_A/D02/202502052200_D01.mp4")
    assert fields.farm is None and fields.camera == "D01"
    # 12 digits that are not a time do not give one
    assert source_fields("/srv/FARM_A/D01/209913991299_D01.mp4").recorded_at is None


def test_custom_pattern():
    patterns = parse_patterns("{farm}/cams/{camera}/*_{recorded_at:%Y-%m-%d_%H%M%S}")
    fields = source_fields("s3bucket/Hof Meier/cams/C3/clip_2024-07-01_063000.mp4", patterns)
    assert (fields.farm, fields.camera, fields.recorded_at) == ("Hof Meier", "C3", dt.datetime(2024, 7, 1, 6, 30))
    with pytest.raises(ValueError, match="names none"):
        PathPattern.compile("just/text")
    with pytest.raises(ValueError, match="only"):
        PathPattern.compile("{recorded_at:%j}")


def test_provenance_of_remote_and_local_sources():
    prov = source_provenance("sftp://barn@host:2222/srv/FARM%20A/D01/202502052200_D01.mp4", "north", parse_patterns(None))
    assert prov == {
        "farm": "FARM A",
        "camera": "D01",
        "recorded_at": "2025-02-05T22:00:00",
        "source_uri": "sftp://barn@host:2222/srv/FARM%20A/D01/202502052200_D01.mp4",
    }
    assert source_provenance("/tmp/x/FARM_B/D02/202502052200_D02.mp4", None, parse_patterns(None))["source_uri"].startswith("file:///")


def test_locations_and_sources():
    loc = Location.parse("sftp://barn@farm.example:2222/srv/footage/")
    assert (loc.user, loc.host, loc.port, loc.path) == ("barn", "farm.example", 2222, "/srv/footage/")
    assert loc.uri_of("/srv/a b.mp4") == "sftp://barn@farm.example:2222/srv/a%20b.mp4"
    s3 = Location.parse("s3://bucket/pre/fix")
    assert (s3.fs_path, s3.child("x").uri) == ("bucket/pre/fix", "s3://bucket/pre/fix/x")
    with pytest.raises(LocationError, match="no passwords"):
        Location.parse("sftp://barn:secret@farm.example/x")
    with pytest.raises(LocationError, match="unsupported"):
        Location.parse("ftp://farm.example/x")
    sources = parse_sources("north=sftp://a@h/x/, lab=s3://b/p,local=/mnt/up", "/default")
    assert [(s.name, s.location.scheme) for s in sources] == [("north", "sftp"), ("lab", "s3"), ("local", "file")]
    assert [(s.name, s.location.path) for s in parse_sources(None, "/default")] == [("landing", "/default")]
    assert parse_sources("s3://b/p", "/d")[0].name == "landing"
    with pytest.raises(LocationError, match="no name"):
        parse_sources("s3://b/p,s3://c/q", "/d")
    assert is_local_folder("/mnt/barn") and not is_local_folder("a=/mnt/barn") and not is_local_folder("s3://b")
