"""Video encoders for evaluation: VideoMAE checkpoints (original or transformers layout)
loaded as transformers' ``VideoMAEModel``, encoder only, and run over crop videos.

- ``settings``: ``EncoderSettings`` (device, batch size, threads);
- ``checkpoints``: what a checkpoint path holds (its files, layout, tensors) and its sha256;
- ``digests``: sha256 of large files, remembered by path, size and modification time;
- ``registry``: the registered checkpoints (one partition of ``crop_embeddings`` each);
- ``frames``: a crop file's sampled frames as the encoder's input (uint8);
- ``videomae``: the model itself (imports torch and transformers: reached through
  ``load_encoder`` only, so that importing this package never loads torch).
"""

from vitcow_assets.encoders.settings import EncoderSettings


class EncoderUnavailable(ValueError):
    """torch or transformers is not installed here; the message says what to install."""


def load_encoder(path, settings: EncoderSettings, sha256: str | None = None):
    """The encoder of the checkpoint at ``path`` (``videomae.VideoEncoder``), on the device
    ``settings`` name; torch and transformers are imported here, on first use."""
    try:
        from vitcow_assets.encoders.videomae import VideoEncoder
    except ImportError as exc:
        raise EncoderUnavailable(f"the video encoder needs torch and transformers: pip install 'vitcow_assets[eval]' ({exc})") from None
    return VideoEncoder.load(path, settings, sha256)


__all__ = ["EncoderSettings", "EncoderUnavailable", "load_encoder"]
