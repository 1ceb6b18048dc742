"""Quality rules of the tables, as pure functions returning the offending rows.

Each function returns a pyarrow Table (or list) of the rows that break its rule; empty means
the rule holds. The Dagster asset checks are thin wrappers around these.
"""

import pyarrow as pa
import pyarrow.compute as pc


def boxes_outside_frame(masks: pa.Table) -> pa.Table:
    """Mask rows whose box is empty or leaves the frame."""
    if masks.num_rows == 0:
        return masks
    x1, y1, x2, y2 = (masks[c] for c in ("x1", "y1", "x2", "y2"))
    bad = pc.or_(
        pc.or_(pc.less(x1, 0), pc.less(y1, 0)),
        pc.or_(
            pc.or_(pc.greater(x2, masks["frame_width"]), pc.greater(y2, masks["frame_height"])),
            pc.or_(pc.less_equal(x2, x1), pc.less_equal(y2, y1)),
        ),
    )
    return masks.filter(bad)


def empty_masks(masks: pa.Table) -> pa.Table:
    """Mask rows that have a box but an empty mask."""
    return masks.filter(pc.less_equal(masks["area"], 0)) if masks.num_rows else masks


def crop_frame_mismatches(crops: pa.Table, clips: pa.Table, measured: dict[str, int] | None = None) -> list[dict]:
    """Crops whose frame count differs from their clip's: in the manifest, or in ``measured``
    (frame counts read from the crop files, by path)."""
    expected = dict(zip(clips["clip_id"].to_pylist(), clips["frames"].to_pylist()))
    bad = []
    for row in crops.select(["crop_path", "clip_id", "frames", "present"]).to_pylist():
        want = expected.get(row["clip_id"])
        in_file = row["frames"] if measured is None else measured.get(row["crop_path"])
        if want is None or row["frames"] != want or len(row["present"]) != want or in_file != want:
            bad.append({"crop_path": row["crop_path"], "clip_id": row["clip_id"], "frames": row["frames"], "clip_frames": want})
    return bad


def untraceable_crops(crops: pa.Table, masks: pa.Table) -> list[dict]:
    """Crops whose present frames do not trace to the mask rows of their (clip, object): each
    crop shows some frames, the crops (parts) of one object never show a frame twice, and
    together they show exactly that object's mask rows."""
    mask_frames: dict[tuple[str, int], set[int]] = {}
    for clip_id, object_id, clip_frame in zip(
        masks["clip_id"].to_pylist(), masks["object_id"].to_pylist(), masks["clip_frame"].to_pylist()
    ):
        mask_frames.setdefault((clip_id, object_id), set()).add(clip_frame)
    bad, shown = [], {}
    for row in crops.select(["crop_path", "clip_id", "object_id", "present"]).to_pylist():
        key = (row["clip_id"], row["object_id"])
        present = {i for i, p in enumerate(row["present"]) if p}
        seen = shown.setdefault(key, set())
        if not present or present & seen or not present <= mask_frames.get(key, set()):
            bad.append({"crop_path": row["crop_path"], "clip_id": row["clip_id"], "object_id": row["object_id"]})
        seen |= present
    flagged = {(b["clip_id"], b["object_id"]) for b in bad}
    bad += [
        {"crop_path": None, "clip_id": c, "object_id": o}
        for (c, o), frames in shown.items()
        if (c, o) not in flagged and frames != mask_frames.get((c, o), set())
    ]
    return bad


def inconsistent_tracks(masks: pa.Table, crops: pa.Table, tracks: pa.Table) -> list[dict]:
    """Problems with ``track_id``: an object with several track ids or none (-1), two objects of
    one clip sharing a track, a crop whose track differs from its mask rows', a crop missing
    from its track's row of the tracks table."""
    bad = []
    track_of: dict[tuple[str, int], set[int]] = {}
    for clip_id, object_id, track_id in zip(masks["clip_id"].to_pylist(), masks["object_id"].to_pylist(), masks["track_id"].to_pylist()):
        track_of.setdefault((clip_id, object_id), set()).add(track_id)
    per_clip: dict[tuple[str, int], int] = {}
    for (clip_id, object_id), ids in track_of.items():
        if len(ids) != 1 or min(ids) < 0:
            bad.append({"clip_id": clip_id, "object_id": object_id, "problem": f"track ids {sorted(ids)}"})
            continue
        key = (clip_id, next(iter(ids)))
        if key in per_clip:
            bad.append({"clip_id": clip_id, "object_id": object_id, "problem": f"shares track {key[1]} with object {per_clip[key]}"})
        per_clip[key] = object_id
    listed = {t: set(paths) for t, paths in zip(tracks["track_id"].to_pylist(), tracks["crop_paths"].to_pylist())}
    for row in crops.select(["crop_path", "clip_id", "object_id", "track_id"]).to_pylist():
        if track_of.get((row["clip_id"], row["object_id"])) != {row["track_id"]}:
            bad.append({"crop_path": row["crop_path"], "problem": f"track {row['track_id']} differs from the mask rows'"})
        elif row["crop_path"] not in listed.get(row["track_id"], set()):
            bad.append({"crop_path": row["crop_path"], "problem": f"not listed under track {row['track_id']} in the tracks table"})
    return bad
