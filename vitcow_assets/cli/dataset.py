"""``vitcow dataset build OUT_DIR --test-farm FARM``: materialize the training-set assets
(catalog, labels snapshot, trimmed crops, splits, subsets, statistics) and write the
VideoMAE files into OUT_DIR, with a ``dataset.json`` naming what it came from."""

import argparse
import json
import sys

from vitcow_assets.cli.materialize import MaterializeError, materialize
from vitcow_assets.cli.options import add_setting_flags, given
from vitcow_assets.cli.queries import fail
from vitcow_assets.datasets.build import DatasetSettings
from vitcow_assets.datasets.splits import empty_splits


def cmd_dataset(args: argparse.Namespace) -> int:
    from vitcow_assets.definitions import build_resources
    from vitcow_assets.defs.datasets import dataset_from_environment

    resources = build_resources()
    try:
        resources["dataset"] = dataset_from_environment(__import__("os").environ, out_dir=args.out_dir, **given(args, DatasetSettings, "dataset"))
        resources["dataset"].settings()
        materialize("build_dataset", resources, verbose=args.verbose)
    except (MaterializeError, ValueError) as exc:
        return fail(str(exc).splitlines()[0])
    manifest = json.loads((resources["dataset"].export_dir(resources["storage"]) / "dataset.json").read_text())
    empty = empty_splits(manifest["report"]["splits"])
    print(json.dumps({"out_dir": args.out_dir, "rows": manifest["rows"], **({"empty": empty} if empty else {}), "taxonomy": manifest.get("taxonomy")},
                     indent=2, default=str))
    for split, why in empty.items():
        print(f"vitcow: {split} is empty: {why}", file=sys.stderr)
    return 0


def add_parsers(sub, lazy) -> None:
    dataset = sub.add_parser("dataset", help="build a training set from the labelled crops")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", metavar="build", required=True)
    build = dataset_sub.add_parser("build", help="materialize the training-set assets and write VideoMAE's files into OUT_DIR")
    build.add_argument("out_dir", metavar="OUT_DIR")
    build.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    add_setting_flags(build, DatasetSettings, prefix="dataset", title="dataset")
    dataset.set_defaults(func=lazy("vitcow_assets.cli.dataset:cmd_dataset"))
