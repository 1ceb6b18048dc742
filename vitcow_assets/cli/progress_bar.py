"""One progress bar per video on stderr: segmentation and cropping each count the video's
clips, so the bar runs once from 0 to twice the clips and never goes backwards; warnings
are printed above it, never into its line."""

import sys

from tqdm import tqdm

#: stages that move the bar, in order: each counts the video's clips once
_STAGES = {"object_masks": "segmenting", "object_crops": "cropping"}


class ProgressBar:
    def __init__(self, enabled: bool, stream=None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.bar: tqdm | None = None

    def start(self, name: str) -> None:
        if self.enabled:
            self.bar = tqdm(total=None, desc=name, unit="clip", file=self.stream, leave=True, dynamic_ncols=True)
            self.bar.set_postfix_str("preparing")

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is None or stage not in _STAGES or total <= 0:
            return
        position = list(_STAGES).index(stage) * total + done
        self.bar.total = 2 * total
        self.bar.n = max(self.bar.n, position)
        self.bar.set_postfix_str(f"{_STAGES[stage]} {done}/{total}", refresh=False)
        self.bar.refresh()

    def warn(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(f"warning: {message}", file=self.stream)
        else:
            print(f"warning: {message}", file=self.stream)

    def stop(self, status: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(status)
            self.bar.close()
            self.bar = None
