"""Objects found in one frame, as parallel numpy arrays (the shape every backend returns),
their masks kept cropped to their boxes (``core.masks.BoxMasks``).

Pure: numpy and ``core.masks`` only.
"""

import dataclasses

import numpy as np

from vitcow_assets.core.masks import BoxMasks


@dataclasses.dataclass
class Detections:
    """Objects found in one frame, as parallel arrays.

    - ``xyxy``: ``float32 (N, 4)`` pixel boxes of the frame (see ``core.geometry``).
    - ``masks``: ``BoxMasks``, one mask per object kept cropped to a box of the frame (a
      ``bool (N, H, W)`` array at the frame's size is accepted and cropped to each mask's
      pixels); ``masks.full()`` / ``np.asarray(masks)`` give the frame-sized array, for
      the consumers that truly need it.
    - ``scores``: ``float32 (N,)`` in ``[0, 1]``.
    - ``object_ids``: ``int64 (N,)``, unique within the frame, stable within the clip.
    - ``prompts``: ``(N,)`` the text prompt that found each object; empty strings when not
      given (backends leave it empty: the segmentation stage labels results with the query
      that made them).
    """

    xyxy: np.ndarray
    masks: BoxMasks
    scores: np.ndarray
    object_ids: np.ndarray
    prompts: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        if not isinstance(self.masks, BoxMasks):
            full = np.asarray(self.masks, dtype=bool)
            if full.ndim != 3 or full.shape[0] != n:
                raise ValueError(f"masks must be (N, H, W) with N={n}, got {full.shape}")
            self.masks = BoxMasks.from_full(full)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.object_ids = np.asarray(self.object_ids, dtype=np.int64).reshape(-1)
        if self.prompts is None:
            self.prompts = np.full(n, "", dtype=object)
        self.prompts = np.asarray(self.prompts, dtype=object).reshape(-1)
        for name in ("masks", "scores", "object_ids", "prompts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {n}")
        if len(np.unique(self.object_ids)) != n:
            raise ValueError(f"object ids repeat within a frame: {self.object_ids.tolist()}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def frame_size(self) -> tuple[int, int]:
        """``(height, width)`` of the frame the masks belong to."""
        return self.masks.height, self.masks.width

    @classmethod
    def empty(cls, height: int, width: int) -> "Detections":
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            masks=BoxMasks.empty(height, width),
            scores=np.zeros(0, np.float32),
            object_ids=np.zeros(0, np.int64),
        )

    def select(self, keep: np.ndarray) -> "Detections":
        return Detections(
            self.xyxy[keep], self.masks.select(keep), self.scores[keep], self.object_ids[keep], self.prompts[keep]
        )
