"""How the encoder runs (``EncoderSettings``): device, batch size, CPU threads. The bytes of
an embeddings table depend on all three (recorded in its ``vitcow.runtime`` metadata): a
batch is always padded to ``batch_size`` rows, so a crop's embedding does not depend on the
crops beside it, and torch's thread count is fixed, never the machine's choice (as the crop
encoder's x264 threads are, ``media.video.EncoderSettings``).

Pure: a settings dataclass.
"""

import dataclasses

from vitcow_assets.core.settings import check, setting

DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """The video encoder's run settings (environment ``VITCOW_ENCODER_<FIELD>``, flags ``--encoder-<field>``)."""

    device: str = setting("auto", "auto (cuda when there is a GPU, else cpu), cuda, cuda:N or cpu")
    batch_size: int = setting(8, "crops per forward pass; every batch is padded to this size (the bytes depend on it)")
    threads: int = setting(4, "CPU threads torch uses: a fixed count (the bytes may depend on it)")

    def __post_init__(self) -> None:
        check("device", self.device in DEVICES or _is_cuda_index(self.device), f"device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}")
        check("batch_size", self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check("threads", self.threads >= 1, f"threads must be a fixed count >= 1, got {self.threads}")


def _is_cuda_index(device: str) -> bool:
    head, _, index = device.partition(":")
    return head == "cuda" and index.isdigit()
