"""The labelling page's context view: a crop's frame on its whole clip, with the crop's
window drawn, fast enough to follow the playing frame.

A 224×224 crop hides where the animal stands (at the trough? the drinker?). The clip file
the catalog names (``clip_path``) holds the whole camera view of the same frames: crop
frame ``i`` is clip frame ``i``, and the crops manifest's ``window_xyxy[i]`` is the crop's
window in the clip's pixels. ``ContextFrames.jpeg`` gives that frame with the window drawn
the way ``media.context`` draws it for the crop pages (outside dimmed, edge outlined, the
canvas grown where the window reaches past the frame), at most ``media.context.MAX_SIDE``
pixels on its longer side, as JPEG.

Unlike the crop page's single picture, the page asks for every frame of a crop in turn:
a clip's decoded frames, scaled to ``MAX_SIDE``, are kept in a least-recently-used cache
bounded by bytes (``CACHE_BYTES``), so one clip is decoded once. A clip larger than the
whole cache is decoded up to the frame asked for, each time. ``CropWindows`` reads the
windows from the video's crops manifest (the catalog leaves the per-frame windows out:
datasets carry every catalog column).

May import numpy, pyarrow, ``media.video``, ``media.context`` and ``footage.layout``; no web
framework, no database.
"""

import collections
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets.media.context import MAX_SIDE, draw_window, fit, jpeg
from vitcow_assets.media.video import iter_frames

#: decoded frames kept, bytes (about 6 clips of 20 frames at 720×405)
CACHE_BYTES = 128 * 1024 * 1024


class ContextError(LookupError):
    """No context frame: no clip file, or no such frame in it (one line)."""


def _scaled(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The frame scaled down to ``MAX_SIDE`` (as ``media.context.fit``) and the scale used."""
    small = fit(rgb, MAX_SIDE)
    return small, small.shape[1] / rgb.shape[1]


def _scaled_window(window_xyxy, scale: float):
    return None if window_xyxy is None else [int(round(v * scale)) for v in window_xyxy]


class ContextFrames:
    """Context images of crops, from their clips (thread-safe)."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self.cache_bytes = cache_bytes
        self._cache: collections.OrderedDict[tuple, tuple[list[np.ndarray], float]] = collections.OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def _cached(self, key: tuple) -> tuple[list[np.ndarray], float] | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
            return entry

    def _keep(self, key: tuple, frames: list[np.ndarray], scale: float) -> None:
        size = sum(f.nbytes for f in frames)
        if size > self.cache_bytes:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = (frames, scale)
            self._held += size
            while self._held > self.cache_bytes:
                _, (old, _) = self._cache.popitem(last=False)
                self._held -= sum(f.nbytes for f in old)

    def _frame(self, path: Path, frame: int) -> tuple[np.ndarray, float]:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        entry = self._cached(key)
        if entry is None:
            frames, scale = [], 1.0
            for _, rgb in iter_frames(path):
                small, scale = _scaled(rgb)
                frames.append(small)
                if sum(f.nbytes for f in frames) > self.cache_bytes:  # too big to keep: decode up to the frame asked for
                    return self._frame_uncached(path, frame)
            self._keep(key, frames, scale)
            entry = (frames, scale)
        frames, scale = entry
        if not 0 <= frame < len(frames):
            raise ContextError(f"{path.name} has frames 0..{len(frames) - 1}, not {frame}")
        return frames[frame], scale

    @staticmethod
    def _frame_uncached(path: Path, frame: int) -> tuple[np.ndarray, float]:
        for _, rgb in iter_frames(path, wanted=[frame]):
            return _scaled(rgb)
        raise ContextError(f"{path.name} has no frame {frame}")

    def jpeg(self, clip_path: str | None, frame: int, window_xyxy) -> bytes:
        """The clip's ``frame`` with ``window_xyxy`` drawn, as JPEG."""
        if not clip_path:
            raise ContextError("no clip file for this crop (the clips asset ran with write_clip_files off)")
        path = Path(clip_path)
        if not path.is_file():
            raise ContextError(f"the clip file {path.name} is missing")
        rgb, scale = self._frame(path, frame)
        return jpeg(fit(draw_window(rgb, _scaled_window(window_xyxy, scale)), MAX_SIDE))


#: per-video crops manifests whose windows are kept (least recently used dropped)
MANIFESTS_KEPT = 16


class CropWindows:
    """Each crop's window per frame (``window_xyxy``, clip pixels), from its video's crops
    manifest under ``home`` (read again when the manifest changes)."""

    def __init__(self, home: str | Path) -> None:
        self.root = StorageRoot(Path(home))
        self._manifests: collections.OrderedDict[str, tuple[tuple, dict[str, list]]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def of(self, video_id: str, crop_path: str) -> list | None:
        """The crop's windows (None per frame where the animal was not found), or None when
        its manifest is gone."""
        try:
            manifest = self.root.video(video_id).crops_table
            stat = manifest.stat()
        except (FileNotFoundError, ValueError):
            return None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            entry = self._manifests.get(video_id)
            if entry is not None and entry[0] == stamp:
                self._manifests.move_to_end(video_id)
                return entry[1].get(crop_path)
        table = pq.read_table(manifest, columns=["crop_path", "window_xyxy"]).to_pydict()
        windows = dict(zip(table["crop_path"], table["window_xyxy"]))
        with self._lock:
            self._manifests[video_id] = (stamp, windows)
            while len(self._manifests) > MANIFESTS_KEPT:
                self._manifests.popitem(last=False)
        return windows.get(crop_path)
