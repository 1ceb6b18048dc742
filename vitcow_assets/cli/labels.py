"""``vitcow label`` (serve the labelling page; ``assign`` work queues) and ``vitcow labels``
(``import``, ``export``, ``agreement``, ``snapshot``, ``token``, ``conflicts``, ``decide``,
``gold import``): the label database from the command line.

Every command that names crops first brings the crop catalog up to date (the
``crop_catalog`` asset, materialized in this process), so the crops labelled are those the
platform has made. ``token`` prints the new token alone on its last line, once.
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
    from vitcow_assets.labelling.access import tokens_needed
    from vitcow_assets.labelling.server import serve, startup_lines

    ctx.catalog()
    store, taxonomy, settings = ctx.store(), ctx.labels.load_taxonomy(), ctx.labels.settings()
    tokens = tokens_needed(args.host, args.require_tokens)
    lines = [*startup_lines(args.host, args.port, tokens, args.annotator), f"labels in:      {store.safe_url} (Ctrl-C stops)"]
    print("\n".join(lines), flush=True)
    serve(store, ctx.root.catalog_table, taxonomy, ctx.root.home, args.host, args.port, require_tokens=tokens, session_hours=settings.session_hours)
    return 0


def _assign(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.queues import assign

    catalog, annotators = ctx.catalog(), [a.strip() for a in args.annotators.split(",") if a.strip()]
    with ctx.store() as store:
        gold = store.gold_labels()["crop_id"].to_pylist()
        done = set(store.current_labels()["crop_id"].to_pylist())
        table = assign(catalog, annotators, args.per_farm, args.seed, args.double, exclude=done, gold=gold, gold_rate=args.gold_rate)
        store.set_assignments(table)
    counts = {a: int(sum(1 for x in table["annotator"].to_pylist() if x == a)) for a in annotators}
    mixed = {a: sum(1 for x, c in zip(table["annotator"].to_pylist(), table["crop_id"].to_pylist()) if x == a and c in set(gold)) for a in annotators}
    print(json.dumps({"assigned": counts, "double": args.double, "gold_mixed_in": mixed}, indent=2))
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
    from vitcow_assets.labelling.queues import agreement_report, fleiss, gold_accuracy

    taxonomy = ctx.labels.load_taxonomy()
    mapping = taxonomy.class_of if args.classes else None
    with ctx.store() as store:
        current, gold = store.current_labels(), store.gold_labels()
    report = {
        "compared": "training classes" if args.classes else "fine labels",
        "pairs": [r.as_dict() for r in agreement_report(current, mapping)],
        "fleiss": fleiss(current, mapping).as_dict(),
        "gold": gold_accuracy(current, gold, mapping),
    }
    print(json.dumps(report, indent=2))
    return 0


def _token(ctx: _Context, args: argparse.Namespace) -> int:
    with ctx.store() as store:
        if args.revoke:
            print(f"revoked {store.revoke_tokens(args.name)} token(s) of {args.name}")
            return 0
        token = store.create_token(args.name, args.role)
    print(f"token for {args.name} ({args.role}); stored hashed, shown this once: give it to {args.name} only "
          f"(revoke: vitcow labels token {args.name} --revoke)")
    print(token)
    return 0


def _conflicts(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.review_api import class_or_note
    from vitcow_assets.labelling.verdicts import conflicts

    catalog, taxonomy = ctx.catalog(), ctx.labels.load_taxonomy()
    paths = dict(zip(catalog["crop_id"].to_pylist(), catalog["crop_path"].to_pylist()))
    with ctx.store() as store:
        decisions = {r["crop_id"]: r for r in store.current_decisions().to_pylist()}
        found = conflicts(store.current_labels().to_pylist(), catalog["crop_id"].to_pylist(), lambda x: class_or_note(taxonomy, x),
                          decisions, set(store.gold_labels()["crop_id"].to_pylist()))
    rows = [{"crop_id": c.crop_id, "crop_path": paths[c.crop_id],
             "labels": {r["annotator"]: {"label": r["label"], "start_frame": r["start_frame"], "end_frame": r["end_frame"], "unsure": r["unsure"]} for r in c.labels},
             "decision": None if c.decision is None else {k: c.decision[k] for k in ("label", "reviewer", "start_frame", "end_frame")}}
            for c in found if args.all or c.decision is None]
    print(json.dumps({"open": sum(c.decision is None for c in found), "decided": sum(c.decision is not None for c in found), "conflicts": rows}, indent=2, default=str))
    return 0


def _decide(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.events import check_segment

    catalog, taxonomy = ctx.catalog(), ctx.labels.load_taxonomy()
    frames = dict(zip(catalog["crop_id"].to_pylist(), catalog["frames"].to_pylist()))
    if args.crop_id not in frames:
        return fail(f"unknown crop {args.crop_id!r} (not in the catalog)")
    with ctx.store() as store:
        if args.undo:
            done = store.undo_decision(args.reviewer, args.crop_id, source="import")
            if done is None:
                return fail(f"crop {args.crop_id} has no decision to undo")
            print(f"undid {done[1].reviewer}'s decision {done[1].label} on {args.crop_id}: its conflict counts again")
            return 0
        if args.label is None or taxonomy.get(args.label) is None:
            return fail(f"label: give one of taxonomy {taxonomy.name!r}'s labels, not {args.label!r}")
        check_segment(args.start_frame, args.end_frame, frames[args.crop_id])
        decision = store.decide(args.crop_id, args.reviewer, args.label, args.start_frame, args.end_frame, source="import")
    print(f"{args.reviewer} decided {args.crop_id}: {decision.label}")
    return 0


def _gold(ctx: _Context, args: argparse.Namespace) -> int:
    from vitcow_assets.labelling.csv_labels import LabelImportError, import_gold

    catalog = ctx.catalog()
    with ctx.store() as store:
        try:
            stored = import_gold(store, args.file, catalog, ctx.labels.load_taxonomy(), ctx.root.home)
        except LabelImportError as exc:
            for problem in exc.problems:
                print(f"vitcow: {problem}", file=sys.stderr)
            print(f"vitcow: {args.file}: nothing imported ({len(exc.problems)} bad row(s))", file=sys.stderr)
            return 2
    print(f"marked {stored} gold crop(s) from {args.file}")
    return 0


def _snapshot(ctx: _Context, args: argparse.Namespace) -> int:
    materialize("labels_snapshot", ctx.resources)
    print(f"labels snapshot: {ctx.root.label_snapshot}")
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    actions = {"import": _import, "export": _export, "agreement": _agreement, "snapshot": _snapshot, "token": _token,
               "conflicts": _conflicts, "decide": _decide, "gold": _gold}
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
    label.add_argument("--require-tokens", action="store_true", help="every call (page, API, crop pages) needs a sign-in with a token (always so beyond 127.0.0.1)")
    label_sub = label.add_subparsers(dest="label_command", metavar="assign")
    assign = label_sub.add_parser("assign", help="give each annotator a balanced, seeded share of every farm's crops")
    assign.add_argument("--annotators", required=True, help="comma-separated names")
    assign.add_argument("--per-farm", type=int, required=True, help="crops per annotator and farm")
    assign.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    assign.add_argument("--double", action="store_true", help="give every crop to two annotators (agreement is then reported)")
    assign.add_argument("--gold-rate", type=float, default=0.0, help="share of each queue drawn from the gold crops, unannounced (default 0)")
    label.set_defaults(func=lazy("vitcow_assets.cli.labels:cmd_label"))
    labels = sub.add_parser("labels", help="import, export, agreement and snapshot of the behaviour labels")
    labels_sub = labels.add_subparsers(dest="labels_command", metavar="COMMAND", required=True)
    imp = labels_sub.add_parser("import", help="import a CSV (crop_path,label or the headerless name,label); all rows or none")
    imp.add_argument("file")
    imp.add_argument("--annotator", required=True)
    exp = labels_sub.add_parser("export", help="write crop_path,label,annotator,labelled_at,start_frame,end_frame,unsure")
    exp.add_argument("file")
    agr = labels_sub.add_parser("agreement", help="Cohen's kappa of every pair, Fleiss' kappa, each annotator's accuracy on gold")
    agr.add_argument("--classes", action="store_true", help="compare training classes instead of fine labels")
    labels_sub.add_parser("snapshot", help="materialize the behaviour_labels snapshot and the trimmed crops")
    tok = labels_sub.add_parser("token", help="make a sign-in token for NAME (printed once, alone on the last line)")
    tok.add_argument("name", metavar="NAME")
    tok.add_argument("--role", choices=("annotator", "reviewer"), default="annotator", help="reviewers also decide conflicts")
    tok.add_argument("--revoke", action="store_true", help="revoke every token of NAME instead")
    con = labels_sub.add_parser("conflicts", help="crops whose annotators disagree, with their labels and any decision")
    con.add_argument("--all", action="store_true", help="also list conflicts already decided")
    dec = labels_sub.add_parser("decide", help="a reviewer's decision on a crop (datasets then use it)")
    dec.add_argument("crop_id", metavar="CROP_ID")
    dec.add_argument("label", metavar="LABEL", nargs="?")
    dec.add_argument("--reviewer", required=True, help="who decides (holds a reviewer token)")
    dec.add_argument("--start-frame", type=int, default=None)
    dec.add_argument("--end-frame", type=int, default=None)
    dec.add_argument("--undo", action="store_true", help="take back the crop's decision in force instead")
    gold = labels_sub.add_parser("gold", help="gold crops: reference labels mixed into queues to measure annotators")
    gold_sub = gold.add_subparsers(dest="gold_command", metavar="import", required=True)
    gold_import = gold_sub.add_parser("import", help="mark crops as gold from a CSV (crop_path or crop_id, label); all rows or none")
    gold_import.add_argument("file")
    labels.set_defaults(func=lazy("vitcow_assets.cli.labels:cmd_labels"))
