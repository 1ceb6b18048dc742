import datetime as dt

import pytest

from vitcow_assets.core.clips import (
    ClipSettings,
    ClipWindow,
    frame_assignments,
    parse_start_time,
    plan_clips,
)


def test_default_plan_takes_every_fourth_frame_in_windows_sharing_one_frame():
    clips = plan_clips(795, 10.0, ClipSettings())
    assert len(clips) == 10  # starts every 76 frames; the 10th ends at frame 760
    assert list(clips[0].source_frames) == list(range(0, 80, 4))
    assert clips[1].source_start == 76 == clips[0].source_end  # the last frame of a clip is the next one's first
    assert all(a.source_end == b.source_start for a, b in zip(clips, clips[1:]))
    assert clips[-1].source_end == 10 * 76
    assert [c.clip_id for c in clips[:2]] == ["c00000", "c00001"]


def test_tail_shorter_than_a_window_is_dropped():
    assert len(plan_clips(152, 10, ClipSettings())) == 1  # the second clip would end at frame 152
    assert len(plan_clips(153, 10, ClipSettings())) == 2


def test_one_frame_clips_cannot_share_a_frame():
    clips = plan_clips(10, 10, ClipSettings(frames_per_clip=1, frame_step=3))
    assert [c.source_start for c in clips] == [0, 3, 6, 9]


def test_video_shorter_than_one_clip_gives_one_shorter_clip():
    (clip,) = plan_clips(10, 10, ClipSettings())
    assert list(clip.source_frames) == [0, 4, 8] and clip.frames == 3


def test_empty_video_gives_no_clip_and_negative_count_is_rejected():
    assert plan_clips(0, 10, ClipSettings()) == []
    with pytest.raises(ValueError):
        plan_clips(-1, 10, ClipSettings())


def test_max_clips_is_seeded_sorted_and_a_subset():
    settings = ClipSettings(max_clips=4, seed=7)
    first = plan_clips(8000, 10, settings)
    assert first == plan_clips(8000, 10, settings)
    assert len(first) == 4
    assert [c.clip_index for c in first] == sorted(c.clip_index for c in first)
    assert first != plan_clips(8000, 10, ClipSettings(max_clips=4, seed=8))
    all_clips = plan_clips(8000, 10, ClipSettings())
    assert set(first) <= set(all_clips)


def test_time_window_keeps_clips_starting_inside_it():
    settings = ClipSettings(frames_per_clip=11, frame_step=6, day_start="09:00", day_end="17:00")
    start = dt.datetime(2025, 2, 5, 8, 59)
    # 1 fps, windows starting every 10 x 6 frames = one clip a minute from 08:59
    clips = plan_clips(60 * 60 * 10, 1.0, settings, start)
    starts = [start + dt.timedelta(seconds=c.source_start) for c in clips]
    assert starts[0].time() == dt.time(9, 0)
    assert all(dt.time(9) <= s.time() < dt.time(17) for s in starts)
    assert len(clips) == 8 * 60


def test_time_window_may_cross_midnight():
    settings = ClipSettings(frames_per_clip=1, frame_step=3600, day_start="22:00", day_end="02:00")
    clips = plan_clips(24 * 3600, 1.0, settings, dt.datetime(2025, 1, 1, 0, 0))
    hours = sorted(c.source_start // 3600 for c in clips)
    assert hours == [0, 1, 22, 23]


def test_time_window_needs_a_start_time():
    with pytest.raises(ValueError, match="start time"):
        plan_clips(100, 10, ClipSettings(day_start="09:00", day_end="17:00"))


def test_parse_start_time_from_reference_file_name():
    assert parse_start_time("202502052200_D01.mp4", ClipSettings()) == dt.datetime(2025, 2, 5, 22, 0)
    with pytest.raises(ValueError, match="no start time"):
        parse_start_time("camera.mp4", ClipSettings())
    with pytest.raises(ValueError, match="does not parse"):
        parse_start_time("209913992200_D01.mp4", ClipSettings())


@pytest.mark.parametrize(
    "kwargs",
    [{"frames_per_clip": 0}, {"frame_step": 0}, {"max_clips": 0}, {"day_start": "09:00"}, {"day_start": "9h", "day_end": "10:00"}],
)
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ClipSettings(**kwargs)


def test_frame_assignments_map_source_frames_to_clip_frames():
    clips = [ClipWindow(0, 0, 2, 3), ClipWindow(5, 100, 2, 2)]
    needed = frame_assignments(clips)
    assert needed == {0: [(0, 0)], 2: [(0, 1)], 4: [(0, 2)], 100: [(1, 0)], 102: [(1, 1)]}
