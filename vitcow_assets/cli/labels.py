"""``vitcow label`` (serve the labelling page; ``assign`` work queues) and ``vitcow labels``
(``import``, ``export``, ``agreement``, ``snapshot``): the label database from the command line.

Every command first brings the crop catalog up to date (the ``crop_catalog`` asset,
materialized in this process), so the crops labelled are those the platform has made.
"""

import argparse
import json
import sys

from vitcow_assets.cli.instance import dagster_home_path, ensure_dagster_home
from vitcow_assets.cli.materialize import MaterializeError, materialize
from vitcow_assets.cli.queries import fail
from vitcow_assets.core.taxonomy import TaxonomyError
from vitcow_assets.labelling.events import LabelError


class _Context:
    """The resources, the catalog and the store the label commands share."""

    def __init__(self, args: argparse.Namespace) -> None:
        from vitcow_assets.definitions import build_resources

        ensure_dagster_home()
        self.resources = build_resources()
        self.root = self.resources["storage"].root()
        self.labels = self.resources["labels"]

    def catalog(self):
        from vitcow_assets.stages.catalog import read_catalog

        materialize("crop_catalog_job", self.resources)
        return read_catalog(self.root)

    def store(self):
        from vitcow_assets.labelling.store import LabelStore, resolve_url

        return LabelStore(resolve_url(self.labels.db_url, self.root.home, dagster_home_path()))


def _serve(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.server import serve

    ctx.catalog()
    store, taxonomy = ctx.store(), ctx.labels.load_taxonomy()
    who = f"?annotator={args.annotator}" if args.annotator else ""
    print(f"labelling page: http://{args.host}:{args.port}/{who}  (labels in {store.safe_url}; Ctrl-C stops)", flush=True)
    serve(store, ctx.root.catalog_table, taxonomy, ctx.root.home, args.host, args.port)
    return 0


def _assign(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.queues import assign

    catalog, annotators = ctx.catalog(), [a.strip() for a in args.annotators.split(",") if a.strip()]
    with ctx.store() as store:
        done = set(store.current_labels()["crop_id"].to_pylist())
        table = assign(catalog, annotators, args.per_farm, args.seed, args.double, exclude=done)
        store.set_assignments(table)
    counts = {a: int(sum(1 for x in table["annotator"].to_pylist() if x == a)) for a in annotators}
    print(json.dumps({"assigned": counts, "double": args.double}, indent=2))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    try:
        ctx = _Context(args)
        return _assign(ctx, args) if args.label_command == "assign" else _serve(ctx, args)
    except (MaterializeError, LabelError, TaxonomyError, ValueError) as exc:
        return fail(str(exc).splitlines()[0])
    except KeyboardInterrupt:
        return 130


def _import(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.csv_labels import LabelImportError, import_labels

    catalog = ctx.catalog()
    with ctx.store() as store:
        try:
            events = import_labels(store, args.file, catalog, ctx.labels.load_taxonomy(), args.annotator, ctx.root.home)
        except LabelImportError as exc:
            for problem in exc.problems:
                print(f"vitcow: {problem}", file=sys.stderr)
            print(f"vitcow: {args.file}: nothing imported ({len(exc.problems)} bad row(s))", file=sys.stderr)
            return 2
    print(f"imported {len(events)} label(s) for {args.annotator} from {args.file}")
    return 0


def _export(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.csv_labels import export_labels

    catalog = ctx.catalog()
    with ctx.store() as store:
        result = export_labels(store.current_labels(), catalog, args.file)
    print(f"exported {result.rows} label(s) to {args.file}" + (f"; {result.orphans} label(s) of crops no longer in the catalog left out" if result.orphans else ""))
    return 0


def _agreement(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.queues import agreement_report

    taxonomy = ctx.labels.load_taxonomy()
    with ctx.store() as store:
        report = agreement_report(store.current_labels(), taxonomy.class_of if args.classes else None)
    print(json.dumps([r.as_dict() for r in report], indent=2))
    return 0


def _snapshot(ctx: _Context, args: argparse.Namespace) -> int:
    materialize("labels_snapshot", ctx.resources)
    print(f"labels snapshot: {ctx.root.label_snapshot}")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    actions = {"import": _import, "export": _export, "agreement": _agreement, "snapshot": _snapshot}
    try:
        return actions[args.labels_command](_Context(args), args)
    except (MaterializeError, LabelError, TaxonomyError, ValueError, OSError) as exc:
        return fail(str(exc).splitlines()[0])


def add_parsers(sub, lazy) -> None:
    """``vitcow label`` and ``vitcow labels`` on the main parser."""
    label = sub.add_parser("label", help="serve the labelling page (or: assign work queues)")
    label.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    label.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    label.add_argument("--annotator", help="print the page's address for this annotator's queue")
    label_sub = label.add_subparsers(dest="label_command", metavar="assign")
    assign = label_sub.add_parser("assign", help="give each annotator a balanced, seeded share of every farm's crops")
    assign.add_argument("--annotators", required=True, help="comma-separated names")
    assign.add_argument("--per-farm", type=int, required=True, help="crops per annotator and farm")
    assign.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    assign.add_argument("--double", action="store_true", help="give every crop to two annotators (agreement is then reported)")
    label.set_defaults(func=lazy("vitcow_assets.cli.labels:cmd_label"))
    labels = sub.add_parser("labels", help="import, export, agreement and snapshot of the behaviour labels")
    labels_sub = labels.add_subparsers(dest="labels_command", metavar="COMMAND", required=True)
    imp = labels_sub.add_parser("import", help="import a CSV (crop_path,label or the headerless name,label); all rows or none")
    imp.add_argument("file")
    imp.add_argument("--annotator", required=True)
    exp = labels_sub.add_parser("export", help="write crop_path,label,annotator,labelled_at,start_frame,end_frame")
    exp.add_argument("file")
    agr = labels_sub.add_parser("agreement", help="agreement of every pair of annotators on the crops both labelled")
    agr.add_argument("--classes", action="store_true", help="compare training classes instead of fine labels")
    labels_sub.add_parser("snapshot", help="materialize the behaviour_labels snapshot and the trimmed crops")
    labels.set_defaults(func=lazy("vitcow_assets.cli.labels:cmd_labels"))
