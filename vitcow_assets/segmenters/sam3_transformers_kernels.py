"""The two operations transformers' SAM3 video model asks the ``kernels`` package for: mask
NMS over an IoU matrix and connected components with their sizes.

Without ``kernels`` (which downloads compiled kernels from the Hugging Face Hub at first use),
transformers 5.24 skips detection NMS, hole filling and sprinkle removal and says so in a
warning: duplicate detections of one animal then become several objects, which Meta's
predictor would have merged. These are the same operations as Meta's CPU code
(``sam3.perflib``: greedy NMS by score, 8-connected components), in numpy and scipy, so
both implementations post-process alike on any device (the masks are the low-resolution ones:
288 x 288 at full size). ``install()`` puts them where transformers looks for the kernel.
"""

import numpy as np
import scipy.ndimage

#: 8-connectivity, as ``skimage.measure.label`` labels 2-D masks by default (Meta's CPU path)
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class CvUtils:
    """What ``transformers.models.sam3_video.modeling_sam3_video`` calls on its kernel."""

    @staticmethod
    def generic_nms(ious, scores, iou_threshold: float, use_iou_matrix: bool = True):
        """Indices kept by greedy NMS: highest score first, dropping every later one whose IoU
        with a kept one is above ``iou_threshold``."""
        import torch

        ious_np = ious.float().detach().cpu().numpy()
        order = np.argsort(-scores.float().detach().cpu().numpy(), kind="stable")
        kept = []
        while order.size:
            first = int(order[0])
            kept.append(first)
            order = order[1:][ious_np[first, order[1:]] <= iou_threshold]
        return torch.tensor(kept, dtype=torch.int64, device=scores.device)

    @staticmethod
    def cc_2d(masks, get_counts: bool = True):
        """``(labels, counts)`` of ``(B, 1, H, W)`` masks: each pixel's component label
        (0: background) and its component's size in pixels (0 on the background)."""
        import torch

        array = masks.detach().cpu().numpy()
        labels = np.zeros(array.shape, dtype=np.int32)
        counts = np.zeros(array.shape, dtype=np.int32)
        for b in range(array.shape[0]):
            labelled, _ = scipy.ndimage.label(array[b, 0] != 0, structure=EIGHT_CONNECTED)
            sizes = np.bincount(labelled.ravel())
            sizes[0] = 0
            labels[b, 0] = labelled
            counts[b, 0] = sizes[labelled]
        return torch.from_numpy(labels).to(masks.device), torch.from_numpy(counts).to(masks.device)


def install() -> None:
    """Let transformers' SAM3 video model use ``CvUtils`` (a module attribute set at run time,
    where transformers keeps the kernel it loaded; idempotent)."""
    from transformers.models.sam3_video import modeling_sam3_video

    if not isinstance(modeling_sam3_video.cv_utils_kernel, CvUtils):
        modeling_sam3_video.cv_utils_kernel = CvUtils()
