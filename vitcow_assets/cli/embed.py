"""``vitcow eval embed CHECKPOINT``: register a VideoMAE checkpoint (a file in the original
layout, or a transformers folder) as a partition of ``crop_embeddings`` and materialize it
in this process, after bringing the crop catalog up to date; prints one table (``--json``:
one document). The encoder is loaded before anything is registered, so a checkpoint that
cannot load fails in one line and leaves no partition behind.
"""

import argparse
import json
import os

from vitcow_assets.cli.materialize import MaterializeError, materialize
from vitcow_assets.cli.options import add_setting_flags, given
from vitcow_assets.cli.queries import fail
from vitcow_assets.encoders.settings import EncoderSettings


def _one_line(exc: Exception) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _report(entry, result, dagster_run: str) -> dict:
    counts = json.loads(result.metadata["counts"].value) if isinstance(result.metadata["counts"].value, str) else result.metadata["counts"].value
    return {"partition_key": entry.key, "checkpoint": entry.path, "checkpoint_sha256": entry.sha256, "layout": entry.layout,
            "table": str(result.metadata["path"].value), "run_id": dagster_run, **counts}


def _table(report: dict) -> str:
    width = max(len(k) for k in report)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in report.items())


def cmd_embed(args: argparse.Namespace) -> int:
    from vitcow_assets.cli.instance import ensure_dagster_home, open_instance
    from vitcow_assets.defs.embeddings import encoder_from_environment
    from vitcow_assets.defs.partitions import checkpoint_partitions
    from vitcow_assets.definitions import build_resources
    from vitcow_assets.encoders.registry import CheckpointRegistry

    ensure_dagster_home()
    resources = build_resources()
    try:
        resources["encoder"] = encoder_from_environment(os.environ, **given(args, EncoderSettings, "encoder"))
        registry = CheckpointRegistry(resources["storage"].root())
        entry = registry.entry_for(args.checkpoint)
        resources["encoder"].load(entry)  # a checkpoint that cannot load fails here, before it is registered
        registry.save(entry)
        instance = open_instance()
        if not instance.has_dynamic_partition(checkpoint_partitions.name, entry.key):
            instance.add_dynamic_partitions(checkpoint_partitions.name, [entry.key])
        materialize("crop_catalog_job", resources, verbose=args.verbose, instance=instance)
        result = materialize("crop_embeddings_job", resources, verbose=args.verbose, instance=instance, partition_key=entry.key)
    except (MaterializeError, ValueError, FileNotFoundError) as exc:
        return fail(_one_line(exc))
    materialization = result.asset_materializations_for_node("crop_embeddings")[0]
    report = _report(entry, materialization, result.run_id)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


def add_parsers(eval_sub, lazy) -> None:
    """``embed`` under ``vitcow eval``."""
    embed = eval_sub.add_parser("embed", help="embed every catalog crop with a VideoMAE checkpoint's encoder (crop_embeddings)")
    embed.add_argument("checkpoint", metavar="CHECKPOINT", help="a VideoMAE checkpoint: an original-layout file (.pth, .pt, .bin, .safetensors) or a transformers folder")
    embed.add_argument("--json", action="store_true", help="print one JSON document")
    embed.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    add_setting_flags(embed, EncoderSettings, prefix="encoder", title="encoder")
    embed.set_defaults(func=lazy("vitcow_assets.cli.embed:cmd_embed"))
