"""``vitcow eval``: what a checkpoint's embeddings and a fine-tuned model's predictions are
worth on a dataset build. Each command materializes its asset in this process (the run shows
in the Dagster UI of the same instance), then prints one table, or with ``--json`` one document.

- ``vitcow eval retrieval CHECKPOINT --dataset DIR``: Hit@k per setting, metric and k with
  its chance level (``retrieval_eval``);
- ``vitcow eval probe CHECKPOINT --dataset DIR``: the linear probe's curve over subset sizes
  (``probe_eval``);
- ``vitcow eval predictions FILE --dataset DIR``: the scorecard of a predictions file
  (``predictions_eval``; a refused file prints one line per bad row, exit 2, nothing stored);
- ``vitcow eval frames OUT_DIR --dataset DIR``: the frame-level export for image classifiers.

``CHECKPOINT`` is a checkpoint partition whose embeddings are stored
(``<home>/embeddings/<CHECKPOINT>/crop_embeddings.parquet``, written by ``vitcow eval
embed``). ``--dataset`` defaults to the dataset resource's export folder
(``$VITCOW_DATASET_DIR``, else ``<home>/datasets/export``). The group lives here so that
``embed`` can join it.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from vitcow_assets.cli.options import add_setting_flags, check_given, given
from vitcow_assets.cli.queries import fail
from vitcow_assets.evaluation.settings import ProbeSettings, RetrievalSettings
from vitcow_assets.footage.layout import DEFAULT_HOME, HOME_ENV, StorageRoot, check_partition_key, default_home, partition_key_for

RETRIEVAL_PRINTED = ("setting", "metric", "k", "hit_micro", "chance_micro", "hit_micro_se", "hit_macro", "chance_macro", "hit_macro_se")
RETRIEVAL_JSON = RETRIEVAL_PRINTED + ("chance_micro_se", "chance_macro_se", "se_basis", "queries", "index_size", "repeats", "classes")
CURVE_PRINTED = ("subset_size", "train_crops", "repeats", "balanced_accuracy", "balanced_accuracy_se", "accuracy", "f1_macro", "chance_balanced_accuracy")
CLASS_PRINTED = ("class_index", "class_name", "support", "predicted", "precision", "recall", "f1", "average_precision")


#: float columns that count things (shown to one place, not three)
COUNT_COLUMNS = frozenset({"train_crops", "queries", "index_size"})
#: the dataset resource's export folder (``defs.datasets.dataset_from_environment``)
DATASET_DIR_ENV = "VITCOW_DATASET_DIR"


def _shown(value, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if column in COUNT_COLUMNS else f"{value:.3f}"
    return str(value)


def format_table(rows: list[dict], columns) -> str:
    """``rows`` as aligned text columns (scores to 3 places, None as -)."""
    cells = [[_shown(r.get(c), c) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    lines += ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in cells]
    return "\n".join(lines)


def checkpoint_key(text: str, root: StorageRoot) -> str:
    """The checkpoint partition ``text`` names: a key whose embeddings are stored; a
    ``ValueError`` in one line otherwise."""
    try:
        key = check_partition_key(text)
    except ValueError:
        key = None
    if key is None or not root.embeddings_table(key).is_file():
        raise ValueError(f"{text}: no embeddings stored for this checkpoint under {root.embeddings_dir} (embed them first: vitcow eval embed CHECKPOINT)")
    return key


def _resources(args: argparse.Namespace, **settings) -> dict:
    from vitcow_assets.definitions import build_resources
    from vitcow_assets.defs.datasets import dataset_from_environment

    resources = build_resources()
    resources["dataset"] = dataset_from_environment(os.environ, out_dir=str(Path(args.dataset).absolute()) if args.dataset else None)
    resources.update(settings)
    return resources


def _materialize(job: str, node: str, partitions: str, key: str, resources: dict, verbose: bool, run_config: dict | None = None):
    """Run ``job`` on partition ``key`` (added to ``partitions`` if new); the asset's metadata."""
    from vitcow_assets.cli.instance import ensure_dagster_home, open_instance
    from vitcow_assets.cli.materialize import materialize

    ensure_dagster_home()
    instance = open_instance()
    if not instance.has_dynamic_partition(partitions, key):
        instance.add_dynamic_partitions(partitions, [key])
    result = materialize(job, resources, verbose=verbose, instance=instance, partition_key=key, run_config=run_config)
    return result.asset_materializations_for_node(node)[0].metadata


def _lineage(metadata) -> dict:
    names = ("dataset_fingerprint", "checkpoint_sha256", "predictions_sha256", "evaluation_code_version", "results_dir")
    return {("code_version" if n == "evaluation_code_version" else n): metadata[n].value for n in names if n in metadata}


def _read(path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def cmd_retrieval(args: argparse.Namespace) -> int:
    from vitcow_assets.cli.materialize import MaterializeError
    from vitcow_assets.defs.evaluation import retrieval_from_environment

    try:
        key = checkpoint_key(args.checkpoint, StorageRoot(default_home()))
        resources = _resources(args, retrieval=retrieval_from_environment(os.environ, **given(args, RetrievalSettings, "retrieval")))
        metadata = _materialize("retrieval_eval_job", "retrieval_eval", "checkpoints", key, resources, args.verbose)
    except (MaterializeError, ValueError) as exc:
        return fail(str(exc).splitlines()[0])
    rows = _read(metadata["path"].value)
    if args.json:
        print(json.dumps({"checkpoint": key, **_lineage(metadata), "rows": [{c: r[c] for c in RETRIEVAL_JSON} for r in rows],
                          "notes": metadata["notes"].value}, indent=2))
    else:
        print(format_table(rows, RETRIEVAL_PRINTED))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from vitcow_assets.cli.materialize import MaterializeError
    from vitcow_assets.defs.evaluation import probe_from_environment

    try:
        key = checkpoint_key(args.checkpoint, StorageRoot(default_home()))
        resources = _resources(args, probe=probe_from_environment(os.environ, **given(args, ProbeSettings, "probe")))
        metadata = _materialize("probe_eval_job", "probe_eval", "checkpoints", key, resources, args.verbose)
    except (MaterializeError, ValueError) as exc:
        return fail(str(exc).splitlines()[0])
    folder = Path(metadata["results_dir"].value)
    curve, runs = _read(folder / "probe_curve.parquet"), _read(folder / "probe_runs.parquet")
    if args.json:
        print(json.dumps({"checkpoint": key, **_lineage(metadata), "curve": curve, "runs": runs, "notes": metadata["notes"].value}, indent=2, default=str))
    else:
        print(format_table(curve, CURVE_PRINTED))
    return 0


def _prechecked(args: argparse.Namespace) -> int | None:
    """Read and match the file first: each refused row on its own line (exit 2)."""
    from vitcow_assets.defs.datasets import dataset_from_environment
    from vitcow_assets.evaluation.inputs import EvaluationInputError
    from vitcow_assets.evaluation.predictions import PredictionsError
    from vitcow_assets.evaluation.runs import check_predictions

    folder = args.dataset or dataset_from_environment(os.environ).export_dir(_storage())
    try:
        check_predictions(args.file, folder, args.aggregate)
    except PredictionsError as exc:
        for line in exc.lines:
            print(f"vitcow: {args.file}: {line}", file=sys.stderr)
        return 2
    except (EvaluationInputError, ValueError) as exc:
        return fail(str(exc))
    return None


def _storage():
    from vitcow_assets.defs.resources import storage_from_environment

    return storage_from_environment(os.environ)


def cmd_predictions(args: argparse.Namespace) -> int:
    from vitcow_assets.cli.materialize import MaterializeError

    refused = _prechecked(args)
    if refused is not None:
        return refused
    key = args.name or partition_key_for(Path(args.file).name)
    config = {"ops": {"predictions_eval": {"config": {"path": str(Path(args.file).absolute()), "aggregate": args.aggregate}}}}
    try:
        check_partition_key(key)
        metadata = _materialize("predictions_eval_job", "predictions_eval", "predictions", key, _resources(args), args.verbose, config)
    except (MaterializeError, ValueError) as exc:
        return fail(str(exc).splitlines()[0])
    folder = Path(metadata["results_dir"].value)
    summary, classes = _read(folder / "scorecard.parquet")[0], _read(folder / "scorecard_classes.parquet")
    if args.json:
        print(json.dumps({"predictions": key, **_lineage(metadata), "scorecard": summary, "classes": classes}, indent=2))
    else:
        print(f"{summary['test_crops']} test crops: accuracy {summary['accuracy']:.3f}, balanced accuracy {summary['balanced_accuracy']:.3f}, "
              f"macro F1 {summary['f1_macro']:.3f}, macro mAP {'-' if summary['map_macro'] is None else format(summary['map_macro'], '.3f')}")
        print(format_table(classes, CLASS_PRINTED))
    return 0


def export_folder(dataset: str | None, environ) -> Path:
    """The dataset export folder ``--dataset`` names, else the dataset resource's (its
    ``out_dir``: ``$VITCOW_DATASET_DIR``, else ``<home>/datasets/export``), found without
    Dagster (``eval frames`` needs no run; a test holds it to the resource's)."""
    chosen = dataset or environ.get(DATASET_DIR_ENV)
    return Path(chosen).absolute() if chosen else StorageRoot(Path(environ.get(HOME_ENV) or DEFAULT_HOME).absolute()).datasets.default_export


def cmd_frames(args: argparse.Namespace) -> int:
    from vitcow_assets.evaluation.inputs import EvaluationInputError
    from vitcow_assets.evaluation.runs import export_frames
    from vitcow_assets.runtime.version import code_version

    folder = export_folder(args.dataset, os.environ)
    try:
        summary = export_frames(folder, args.out_dir, args.frames_per_crop, code_version())
    except (EvaluationInputError, ValueError, OSError) as exc:
        return fail(str(exc).splitlines()[0])
    print(json.dumps(summary, indent=2) if args.json else f"{summary['images']} frames of {summary['dataset']['fingerprint']} in {summary['out_dir']}")
    return 0


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The settings flags checked by their own classes, naming the flag (exit 2)."""
    try:
        if args.eval_command == "retrieval":
            check_given(args, RetrievalSettings, "retrieval")
        elif args.eval_command == "probe":
            check_given(args, ProbeSettings, "probe")
        elif args.eval_command == "frames" and args.frames_per_crop < 0:
            raise ValueError(f"--frames-per-crop must be >= 0, got {args.frames_per_crop}")
    except ValueError as exc:
        parser.error(str(exc))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", metavar="DIR", help="the dataset export folder (default $VITCOW_DATASET_DIR or <home>/datasets/export)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--verbose", action="store_true", help="show Dagster's step logs")


def add_parsers(sub, lazy) -> argparse.ArgumentParser:
    """The ``eval`` group; returns its subparsers' parent so other commands (``embed``) can join."""
    group = sub.add_parser("eval", help="score checkpoints' embeddings and models' predictions on a dataset build")
    commands = group.add_subparsers(dest="eval_command", metavar="retrieval|probe|predictions|frames", required=True)
    retrieval = commands.add_parser("retrieval", help="Hit@k of a checkpoint's embeddings beside its chance level")
    retrieval.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint partition whose embeddings are stored")
    _common(retrieval)
    add_setting_flags(retrieval, RetrievalSettings, prefix="retrieval", title="retrieval")
    retrieval.set_defaults(func=lazy("vitcow_assets.cli.evaluate:cmd_retrieval"))
    probe = commands.add_parser("probe", help="a linear probe on a checkpoint's embeddings for every efficiency subset")
    probe.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint partition whose embeddings are stored")
    _common(probe)
    add_setting_flags(probe, ProbeSettings, prefix="probe", title="probe")
    probe.set_defaults(func=lazy("vitcow_assets.cli.evaluate:cmd_probe"))
    predictions = commands.add_parser("predictions", help="the scorecard of a fine-tuned model's predictions on the test split")
    predictions.add_argument("file", metavar="FILE", help="predictions CSV: video_path or crop_id, y_true, y_pred, score_class_<i>; or per frame (image_path)")
    predictions.add_argument("--name", help="the predictions partition (default: from the file name)")
    predictions.add_argument("--aggregate", choices=("vote", "mean"), default="vote", help="per-frame predictions: majority vote or mean score per crop (default vote)")
    _common(predictions)
    predictions.set_defaults(func=lazy("vitcow_assets.cli.evaluate:cmd_predictions"))
    frames = commands.add_parser("frames", help="export the dataset's frames for image classifiers (<split>/<class>/<crop_id>_f<frame>.jpg)")
    frames.add_argument("out_dir", metavar="OUT_DIR")
    frames.add_argument("--frames-per-crop", type=int, default=0, metavar="N", help="frames of each crop, evenly spaced (default 0: every frame)")
    _common(frames)
    frames.set_defaults(func=lazy("vitcow_assets.cli.evaluate:cmd_frames"))
    return commands
