"""SAM3 video-predictor backend (the only module that will know SAM3's request dicts).

Not built yet: the platform issue ships the protocol and the CPU ``motion`` backend; the
SAM3 adapter is its own piece of work. Until then asking for it fails in one line.
"""

from vitcow_assets.segmenters.base import Segmenter, SegmenterConfigError


def load_sam3(checkpoint: str, device: str = "auto") -> Segmenter:
    raise SegmenterConfigError(
        "the sam3 backend is not available in this version of vitcow_assets; use --backend motion"
    )
