import dagster as dg
import pytest

from vitcow_assets.core.tables import NO_PROMPT

from vitcow_assets.core.prompts import (
    BoxQuery,
    PointStep,
    PromptFileError,
    RemoveStep,
    TextQuery,
    clip_passes,
    parse_prompt_file,
    plan_from_json,
    plan_to_json,
    text_plan,
)
from vitcow_assets.footage.prompt_files import (
    prompt_file_for,
    resolve_plan,
    video_stem_of_prompt_file,
)
from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.helpers import materialize_partition, register

GOOD = """
prompts:
  - text: cow
  - text: calf
  - box: [10, 20, 110, 90]
    frame: 40
  - points: [[50, 60], [70, 80]]
    labels: [1, 0]
    frame: 8
    object: 7
  - remove: 4
    frame: 90
"""


def parse(text, name="cam.prompts.yaml"):
    return parse_prompt_file(text, name, width=320, height=240, frame_count=100)


def test_parse_every_step_kind_in_order():
    plan = parse(GOOD)
    assert plan.queries == (TextQuery("cow"), TextQuery("calf"), BoxQuery((10, 20, 110, 90), 40, None))
    assert plan.steps == (PointStep(((50, 60), (70, 80)), (1, 0), 8, 7), RemoveStep(4, 90))
    assert [plan.label(i) for i in range(plan.passes)] == ["cow", "calf", "visual"]
    assert plan_from_json(plan_to_json(plan)) == plan


def test_ids_interleave_by_pass_and_steps_go_to_their_pass_and_clip():
    plan = parse(GOOD)
    assert plan.table_id(1, 2) == 7 and plan.pass_of(7) == (1, 2)
    first = clip_passes(plan, range(0, 80, 4))  # frames 0..76: box (frame 40) and point (frame 8) act here
    assert [p.pass_index for p in first] == [0, 1, 2]
    assert first[2].query_clip_frame == 10
    assert first[1].steps == ((plan.steps[0], 2),)  # id 7 -> pass 1, frame 8 -> clip frame 2
    second = clip_passes(plan, range(80, 160, 4))  # no box frame: text passes only; removal of 4 (pass 1) at 90? no: 90 not sampled
    assert [p.pass_index for p in second] == [0, 1] and all(not p.steps for p in second)


def test_text_queries_share_one_session_where_the_segmenter_takes_several_texts():
    plan = parse(GOOD)  # cow, calf, a box (frame 40), clicks for id 7 (pass 1), a removal
    first = clip_passes(plan, range(0, 80, 4), texts_together=True)
    assert [p.pass_index for p in first] == [0, 2]  # the texts in one session, the box in its own
    joint, box = first
    assert joint.texts == ((0, "cow"), (1, "calf")) and joint.pass_indices == (0, 1) and box.pass_indices == (2,)
    assert joint.steps == ((plan.steps[0], 2),)  # id 7 belongs to "calf", answered by the shared session
    assert clip_passes(text_plan("cow"), range(4), texts_together=True)[0].texts == ()  # one text: a session of one query
    assert [p.texts for p in clip_passes(plan, range(0, 80, 4))] == [(), (), ()]  # one text per session otherwise


@pytest.mark.parametrize(
    "text, message",
    [
        ("prompts: [", "line"),
        ("{}", "one key 'prompts'"),
        ("prompts:\n  - txt: cow", "unknown step"),
        ("prompts:\n  - text: cow\n    colour: red", "prompts[0]: unknown key(s) ['colour']"),
        ("prompts:\n  - text: cow\n  - points: [[400, 10]]\n    labels: [1]\n    frame: 1\n    object: 1", "prompts[1]: points[0]: (400, 10) is outside the 320x240 frame"),
        ("prompts:\n  - box: [0, 0, 10, 10]\n    frame: 100", "prompts[0]: frame 100 is outside the video (0..99)"),
        ("prompts:\n  - box: [30, 0, 10, 10]\n    frame: 1", "has no area"),
        ("prompts:\n  - text: cow\n  - points: [[1, 1]]\n    labels: [2]\n    frame: 1\n    object: 1", "labels"),
        ("prompts:\n  - text: cow\n  - remove: -3\n    frame: 1", "non-negative integer object id"),
        ("prompts:\n  - remove: 3\n    frame: 1", "at least one text or box query"),
        ("prompts:\n  - text: ''", "non-empty string"),
    ],
)
def test_bad_prompt_files_name_the_file_and_field(text, message):
    with pytest.raises(PromptFileError) as info:
        parse(text)
    assert str(info.value).startswith("cam.prompts.yaml:") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_prompt_file_lookup_and_precedence(tmp_path):
    video = tmp_path / "barn 1.mp4"
    video.write_bytes(b"")
    assert prompt_file_for(video) is None
    assert resolve_plan(str(video), 320, 240, 100, None, "cow") == text_plan("cow").__class__(text_plan("cow").queries, (), "default")
    (tmp_path / "barn 1.prompts.yaml").write_text("prompts:\n  - text: calf\n")
    assert prompt_file_for(video) == tmp_path / "barn 1.prompts.yaml"
    assert video_stem_of_prompt_file(tmp_path / "barn 1.prompts.yaml") == "barn 1"
    assert resolve_plan(str(video), 320, 240, 100, None, "cow").queries == (TextQuery("calf"),)
    assert resolve_plan(str(video), 320, 240, 100, "sheep", "cow").queries == (TextQuery("sheep"),)


def test_bad_prompt_file_fails_the_partition_and_writes_no_masks(synthetic_video, tmp_path):
    footage = tmp_path / "footage"
    footage.mkdir()
    video = footage / "pen.mp4"
    video.write_bytes(synthetic_video.read_bytes())
    (footage / "pen.prompts.yaml").write_text("prompts:\n  - text: cow\n  - remove: 2\n    frame: 5000\n")
    with dg.instance_for_test() as instance:
        key = register(video, tmp_path / "home", instance)
        result = materialize_partition(key, tmp_path / "home", instance, raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "prompts"
    assert "pen.prompts.yaml: prompts[1]: frame 5000 is outside the video" in failure.step_failure_data.error.cause.message
    layout = StorageRoot(tmp_path / "home").video(key)
    assert not layout.prompts_json.exists() and not layout.masks_table.exists() and not layout.crops_dir.exists()


def test_editing_the_prompt_file_changes_the_data_version(synthetic_video, tmp_path):
    footage = tmp_path / "footage"
    footage.mkdir()
    video = footage / "pen.mp4"
    video.write_bytes(synthetic_video.read_bytes())
    prompt_file = footage / "pen.prompts.yaml"
    prompt_file.write_text("prompts:\n  - text: cow\n")
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        key = register(video, home, instance)
        assert materialize_partition(key, home, instance).success
        first = instance.get_latest_materialization_event(dg.AssetKey("prompts")).asset_materialization.tags["dagster/data_version"]
        prompt_file.write_text("prompts:\n  - text: cow\n  - text: calf\n")
        assert materialize_partition(key, home, instance).success
        second = instance.get_latest_materialization_event(dg.AssetKey("prompts")).asset_materialization.tags["dagster/data_version"]
    assert first != second
    import pyarrow.parquet as pq

    masks = StorageRoot(home).video(key).masks_table
    assert pq.read_schema(masks).metadata[b"vitcow.prompt"] == b"cow, calf"  # both passes ran on the edited plan
    assert set(pq.read_table(masks)["prompt"].to_pylist()) == {NO_PROMPT}  # motion found them without the prompts


ALIAS_BOMB = """\
prompts:
  - - &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    - &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    - &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    - &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    - &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    - &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    - &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    - &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    - &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _resolve(tmp_path, text: str | bytes, name: str = "cam.mp4"):
    video = tmp_path / name
    prompt = video.with_name(video.stem + ".prompts.yaml")
    prompt.write_bytes(text if isinstance(text, bytes) else text.encode())
    return resolve_plan(str(video), 320, 240, 100, None, "cow")


def test_alias_bomb_fails_fast_in_one_short_line(tmp_path):
    import time

    assert len(ALIAS_BOMB.encode()) < 400  # expands to 9**9 strings
    started = time.perf_counter()
    with pytest.raises(PromptFileError) as failure:
        _resolve(tmp_path, ALIAS_BOMB)
    took = time.perf_counter() - started
    message = str(failure.value)
    assert "aliases" in message and "cam.prompts.yaml" in message and "line 3" in message
    assert "\n" not in message and len(message) < 400
    assert took < 1.0
    print(f"alias bomb: refused in {took * 1000:.1f} ms: {message}")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("prompts:\n  - box: [" + ",".join(["1"] * 20000) + "]\n    frame: 0\n", "box: expected [x1, y1, x2, y2] in pixels, got [1, 1,"),
        ("prompts:\n  - {" + ", ".join(f"k{i}: 1" for i in range(20000)) + "}\n", "unknown step with keys"),
        ("prompts: " + "[" * 50000 + "]" * 50000 + "\n", "nested too deeply"),
        ("prompts:\n  - remove: 1" + "0" * 5000 + "\n    frame: 0\n", "not a usable value"),
    ],
)
def test_huge_values_give_short_one_line_errors(tmp_path, text, expected):
    with pytest.raises(PromptFileError) as failure:
        _resolve(tmp_path, text)
    message = str(failure.value)
    assert expected in message and "\n" not in message and len(message) <= 300


def test_prompt_file_over_one_megabyte_is_refused_unread(tmp_path):
    with pytest.raises(PromptFileError, match="larger than 1048576 bytes"):
        _resolve(tmp_path, b"prompts:\n  - text: cow\n" + b"#" * (1 << 20))


def test_video_name_too_long_for_a_prompt_file_beside_it_uses_the_default(tmp_path):
    name = "b" * 250 + ".mp4"  # 254 bytes: the name of its prompt file would be 263
    (tmp_path / name).write_bytes(b"")
    assert prompt_file_for(tmp_path / name) is None
    plan = resolve_plan(str(tmp_path / name), 320, 240, 100, None, "cow")
    assert plan.source == "default" and plan.label(0) == "cow"
