"""Objects found in one frame, as parallel numpy arrays (the shape every backend returns).

Pure: numpy only.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Detections:
    """Objects found in one frame, as parallel arrays.

    - ``xyxy``: ``float32 (N, 4)`` pixel boxes of the frame (see ``core.geometry``).
    - ``masks``: ``bool (N, H, W)`` at the frame's size.
    - ``scores``: ``float32 (N,)`` in ``[0, 1]``.
    - ``object_ids``: ``int64 (N,)``, unique within the frame, stable within the clip.
    - ``prompts``: ``(N,)`` the text prompt that found each object; empty strings when not
      given (backends leave it empty: the segmentation stage labels results with the query
      that made them).
    """

    xyxy: np.ndarray
    masks: np.ndarray
    scores: np.ndarray
    object_ids: np.ndarray
    prompts: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.masks = np.asarray(self.masks, dtype=bool)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.object_ids = np.asarray(self.object_ids, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if self.prompts is None:
            self.prompts = np.full(n, "", dtype=object)
        self.prompts = np.asarray(self.prompts, dtype=object).reshape(-1)
        if self.masks.ndim != 3 or self.masks.shape[0] != n:
            raise ValueError(f"masks must be (N, H, W) with N={n}, got {self.masks.shape}")
        for name in ("scores", "object_ids", "prompts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {n}")
        if len(np.unique(self.object_ids)) != n:
            raise ValueError(f"object ids repeat within a frame: {self.object_ids.tolist()}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def frame_size(self) -> tuple[int, int]:
        """``(height, width)`` of the frame the masks belong to."""
        return self.masks.shape[1], self.masks.shape[2]

    @classmethod
    def empty(cls, height: int, width: int) -> "Detections":
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, height, width), bool),
            scores=np.zeros(0, np.float32),
            object_ids=np.zeros(0, np.int64),
        )

    def select(self, keep: np.ndarray) -> "Detections":
        return Detections(
            self.xyxy[keep], self.masks[keep], self.scores[keep], self.object_ids[keep], self.prompts[keep]
        )
