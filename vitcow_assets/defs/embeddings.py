"""The video encoder resource and ``crop_embeddings``: one partition per registered
checkpoint (``encoders.registry``), one row per catalog crop (``core.embeddings``).

The encoder is loaded once per process and checkpoint (the most recent one is kept), on the
device its settings name (``encoders.EncoderSettings``: environment ``VITCOW_ENCODER_<FIELD>``,
flags ``--encoder-<field>``). The asset reads the checkpoint from its registered path,
refuses it when its bytes changed, and hands the work to ``stages.embedding``.
"""

import threading

import dagster as dg

from vitcow_assets.core.embeddings import embeddings_schema
from vitcow_assets.core.settings import build, record
from vitcow_assets.defs.code_versions import versioned_asset
from vitcow_assets.defs.config import config_class, from_environment, setting_values
from vitcow_assets.defs.labels import crop_catalog, trimmed_crops
from vitcow_assets.defs.metadata import table_metadata
from vitcow_assets.defs.partitions import checkpoint_partitions
from vitcow_assets.defs.resources import VitcowStorage, release_accelerator_memory
from vitcow_assets.encoders import EncoderSettings, load_encoder
from vitcow_assets.encoders.registry import CheckpointRegistry, RegisteredCheckpoint
from vitcow_assets.media.hashing import sha256_file
from vitcow_assets.runtime.version import code_version
from vitcow_assets.stages.embedding import embed_crops

GROUP = "evaluation"

_LOADED: dict[tuple, object] = {}
_LOADED_LOCK = threading.Lock()


def cached_encoder(checkpoint: RegisteredCheckpoint, settings: EncoderSettings):
    """The encoder of ``checkpoint`` with ``settings``, loaded once per process; loading
    another drops the one before (one model in memory at a time)."""
    key = (checkpoint.sha256, checkpoint.path, settings)
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED.clear()
            release_accelerator_memory()
            _LOADED[key] = load_encoder(checkpoint.path, settings, checkpoint.sha256)
        return _LOADED[key]


class _Encoder(dg.ConfigurableResource):
    """How the video encoder runs (`device`, `batch_size`, `threads`: see
    `encoders.EncoderSettings`); the model is loaded once per process and checkpoint."""

    def settings(self) -> EncoderSettings:
        return build(EncoderSettings, setting_values(EncoderSettings, self), where=lambda name: f"encoder resource {name}")

    def load(self, checkpoint: RegisteredCheckpoint):
        """The loaded encoder (``encoders.videomae.VideoEncoder``) of ``checkpoint``."""
        return cached_encoder(checkpoint, self.settings())


EncoderResource = config_class(EncoderSettings, "EncoderResource", base=_Encoder, doc=_Encoder.__doc__)


def encoder_from_environment(environ, **overrides) -> "EncoderResource":
    """The encoder resource from ``VITCOW_ENCODER_<FIELD>``; ``overrides`` (not None) win."""
    return from_environment(EncoderResource, EncoderSettings, environ, "encoder", **overrides)


def _one_line(exc: Exception) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _computation_version(context: dg.AssetExecutionContext) -> str:
    """This asset's code version (``defs.code_versions``: a hash of the source it runs, the
    same across commits that leave that source alone): a change of it makes every row be
    computed again."""
    return context.assets_def.code_versions_by_key[context.asset_key]


@versioned_asset(group_name=GROUP, kinds={"parquet", "pytorch"}, partitions_def=checkpoint_partitions, deps=[crop_catalog, trimmed_crops])
def crop_embeddings(context: dg.AssetExecutionContext, storage: VitcowStorage, encoder: EncoderResource) -> dg.MaterializeResult:
    """One checkpoint's VideoMAE encoder embedding of every catalog crop (its trimmed copy
    where a segment is marked): the centre frames, the encoder only, pooled as the
    checkpoint's model pools. Re-materializing embeds only crops not embedded yet."""
    root = storage.root()
    try:
        checkpoint = CheckpointRegistry(root).verified(context.partition_key)
        model = encoder.load(checkpoint)
        result = embed_crops(root, checkpoint, model, _computation_version(context), code_version())
    except (ValueError, FileNotFoundError) as exc:  # a bad checkpoint, crop file or setting: one line
        raise dg.Failure(description=_one_line(exc)) from None
    spec = model.spec
    return dg.MaterializeResult(
        metadata={
            **table_metadata(result.path, embeddings_schema(spec.dim), result.rows),
            "summary": dg.MetadataValue.md(
                f"**{result.rows} crops**: {result.embedded} embedded now, {result.kept} kept · {spec.dim}-d, {spec.pooling} pooling, "
                f"{spec.frames} frames of {spec.image_size} px · {result.summary()['crops_per_second']} crops/s"
            ),
            "checkpoint": dg.MetadataValue.json({**checkpoint.record(), "path": checkpoint.path, "partition_key": checkpoint.key}),
            "encoder": dg.MetadataValue.json(spec.record()),
            "runtime": dg.MetadataValue.json(model.runtime_record()),
            "settings": dg.MetadataValue.json(record(encoder.settings())),
            "counts": dg.MetadataValue.json(result.summary()),
        },
        data_version=dg.DataVersion(sha256_file(result.path)),
    )


EMBEDDING_ASSETS = [crop_embeddings]
