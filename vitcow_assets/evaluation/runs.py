"""Each evaluation end to end, one function each, as the assets (``defs.evaluation``) and
``vitcow eval`` run them: read and check the inputs (``inputs``), score (``retrieval``,
``probe``, ``predictions`` + ``scorecard``), draw (``charts``) and store (``store``) under the
storage root, per checkpoint (or predictions name) and dataset build.

- ``run_retrieval`` and ``run_probe``: partition ``key``'s embeddings
  (``StorageRoot.embeddings_table``) of the dataset's labelled crops;
- ``run_predictions``: an imported predictions file (per crop or per frame);
- ``export_frames``: the frame-level export of a dataset's splits for image classifiers.

Nothing is written before every input is read and checked. No Dagster, no torch.
"""

import dataclasses
import hashlib
from pathlib import Path

import pyarrow as pa

from vitcow_assets.core.settings import record
from vitcow_assets.evaluation.charts import Picture, confusion_chart, curve_chart, hit_chart
from vitcow_assets.evaluation.frames import frame_plan
from vitcow_assets.evaluation.inputs import DatasetExport, Embeddings, read_dataset, read_embeddings
from vitcow_assets.evaluation.predictions import AGGREGATIONS, Matched, aggregate_frames, match_predictions
from vitcow_assets.evaluation.probe import ProbeResult, evaluate_probe, probe_data, training_sets
from vitcow_assets.evaluation.provenance import Provenance, with_lineage
from vitcow_assets.evaluation.retrieval import RetrievalResult, evaluate_retrieval, labelled_from
from vitcow_assets.evaluation.settings import ProbeSettings, RetrievalSettings
from vitcow_assets.evaluation.scorecard import CLASS_FIELDS, CONFUSION_FIELDS, SCORE_FIELDS, Scorecard, score
from vitcow_assets.evaluation.store import read_predictions_csv, write_frames, write_results
from vitcow_assets.footage.layout import EvaluationLayout, StorageRoot

FRAME_COLUMNS = ("image_path", "frame_index")


@dataclasses.dataclass(frozen=True)
class CheckpointInputs:
    export: DatasetExport
    embeddings: Embeddings
    provenance: Provenance


def _inputs(root: StorageRoot, key: str, dataset_dir, code_version: str) -> CheckpointInputs:
    export = read_dataset(dataset_dir)
    embeddings = read_embeddings(root.embeddings_table(key), export.splits["crop_id"].to_pylist())
    return CheckpointInputs(export, embeddings, Provenance(export.fingerprint, code_version, embeddings.checkpoint_sha256))


def _report(inputs: CheckpointInputs, key: str, settings, notes) -> dict:
    return {
        "dataset": {"dir": str(inputs.export.out_dir), "fingerprint": inputs.export.fingerprint, "classes": list(inputs.export.classes)},
        "checkpoint": {"partition": key, "sha256": inputs.embeddings.checkpoint_sha256, "embeddings": str(inputs.embeddings.path),
                       "embedding_dim": int(inputs.embeddings.vectors.shape[1]), "metadata": inputs.embeddings.metadata},
        "code_version": inputs.provenance.code_version, "settings": record(settings), "notes": list(notes),
    }


@dataclasses.dataclass(frozen=True)
class RetrievalRun:
    layout: EvaluationLayout
    inputs: CheckpointInputs
    result: RetrievalResult
    chart: Picture


def run_retrieval(root: StorageRoot, key: str, dataset_dir, settings: RetrievalSettings, code_version: str) -> RetrievalRun:
    """Hit@k of checkpoint partition ``key`` on the dataset in ``dataset_dir``, stored."""
    inputs = _inputs(root, key, dataset_dir, code_version)
    result = evaluate_retrieval(labelled_from(inputs.export.splits, inputs.embeddings.vectors), settings, inputs.provenance)
    chart = hit_chart(result.table.to_pylist())
    layout = root.checkpoint_evaluation(key, inputs.export.fingerprint)
    write_results(layout, {"retrieval": result.table}, {"retrieval": chart}, "retrieval", _report(inputs, key, settings, result.notes))
    return RetrievalRun(layout, inputs, result, chart)


@dataclasses.dataclass(frozen=True)
class ProbeRunResult:
    layout: EvaluationLayout
    inputs: CheckpointInputs
    result: ProbeResult
    curve_chart: Picture
    confusion_chart: Picture
    notes: tuple[str, ...]


def run_probe(root: StorageRoot, key: str, dataset_dir, settings: ProbeSettings, code_version: str) -> ProbeRunResult:
    """The linear probe of checkpoint partition ``key`` on every training set of the dataset, stored."""
    inputs = _inputs(root, key, dataset_dir, code_version)
    export = inputs.export
    data = probe_data(export.splits, inputs.embeddings.vectors, export.classes)
    result = evaluate_probe(data, training_sets(data.train_ids, export.subsets, settings.full), settings, inputs.provenance)
    largest = result.largest
    curve = curve_chart(result.curve.to_pylist())
    confusion = confusion_chart(largest.scorecard.confusion, export.classes, f"Linear probe on {largest.subset.name} ({len(largest.subset.crop_ids)} crops): test confusion")
    notes = tuple(export.manifest.get("report", {}).get("subsets") or ()) + tuple(f"{r['subset']}: {r['notes']}" for r in result.runs.to_pylist() if r["notes"])
    layout = root.checkpoint_evaluation(key, export.fingerprint)
    tables = {"probe_runs": result.runs, "probe_classes": result.classes, "probe_confusion": result.confusion, "probe_curve": result.curve}
    write_results(layout, tables, {"probe_curve": curve, "probe_confusion": confusion}, "probe", _report(inputs, key, settings, notes))
    return ProbeRunResult(layout, inputs, result, curve, confusion, notes)


def match_file(table: pa.Table, export: DatasetExport, aggregate: str = "vote") -> tuple[Matched, str]:
    """The rows of a predictions file matched to the test split (per frame: aggregated per
    crop first); the form read (``crop`` or ``frame``)."""
    test = export.split("test")
    if any(c in table.column_names for c in FRAME_COLUMNS):
        crops, lines = aggregate_frames(table, export.classes, aggregate)
        return match_predictions(crops, test, export.classes, export.root, lines), "frame"
    return match_predictions(table, test, export.classes, export.root), "crop"


def scorecard_tables(card: Scorecard, matched: Matched, test: pa.Table, provenance: Provenance) -> dict[str, pa.Table]:
    """The scorecard, its per-class and confusion rows and the matched predictions, with lineage."""
    paths = dict(zip(test["crop_id"].to_pylist(), test["crop_path"].to_pylist()))
    predictions = pa.table({
        "crop_id": list(matched.crop_ids), "crop_path": [paths[c] for c in matched.crop_ids],
        "y_true": pa.array(matched.y_true, pa.int32()), "y_pred": pa.array(matched.y_pred, pa.int32()),
        "scores": pa.array(matched.scores.tolist() if matched.scores is not None else [None] * len(matched.crop_ids), pa.list_(pa.float64())),
    })
    return {
        "scorecard": with_lineage([card.summary], SCORE_FIELDS, provenance),
        "scorecard_classes": with_lineage(card.per_class, CLASS_FIELDS, provenance),
        "scorecard_confusion": with_lineage(card.confusion_rows(), CONFUSION_FIELDS, provenance),
        "predictions": predictions,
    }


@dataclasses.dataclass(frozen=True)
class PredictionsRun:
    layout: EvaluationLayout
    export: DatasetExport
    scorecard: Scorecard
    tables: dict[str, pa.Table]
    chart: Picture
    form: str
    provenance: Provenance


def check_predictions(path, dataset_dir, aggregate: str = "vote") -> tuple[DatasetExport, Matched, str]:
    """Read and match a predictions file; ``PredictionsError`` (one line per refused row) or
    ``EvaluationInputError``, before anything is written."""
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
    export = read_dataset(dataset_dir)
    matched, form = match_file(read_predictions_csv(path), export, aggregate)
    return export, matched, form


def run_predictions(root: StorageRoot, key: str, path, dataset_dir, code_version: str, aggregate: str = "vote") -> PredictionsRun:
    """The scorecard of the predictions file at ``path`` on the dataset's test split, stored
    under predictions partition ``key``; nothing stored when a row is refused."""
    export, matched, form = check_predictions(path, dataset_dir, aggregate)
    provenance = Provenance(export.fingerprint, code_version, predictions_sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())
    card = score(matched.y_true, matched.y_pred, export.classes, matched.scores)
    tables = scorecard_tables(card, matched, export.split("test").sort_by("crop_id"), provenance)
    chart = confusion_chart(card.confusion, export.classes, f"Predictions {key}: test confusion")
    layout = root.predictions_evaluation(key, export.fingerprint)
    report = {"dataset": {"dir": str(export.out_dir), "fingerprint": export.fingerprint, "classes": list(export.classes)},
              "predictions": {"path": str(Path(path).absolute()), "sha256": provenance.predictions_sha256, "form": form,
                              "aggregate": aggregate if form == "frame" else None},
              "code_version": code_version}
    write_results(layout, tables, {"scorecard_confusion": chart}, "scorecard", report)
    return PredictionsRun(layout, export, card, tables, chart, form, provenance)


def export_frames(dataset_dir, out_dir, per_crop: int, code_version: str) -> dict:
    """The frame-level export of the dataset in ``dataset_dir`` into ``out_dir``: its summary."""
    export = read_dataset(dataset_dir)
    plan = frame_plan(export.splits, export.classes, per_crop)
    manifest = {"dataset": {"dir": str(export.out_dir), "fingerprint": export.fingerprint}, "classes": list(export.classes),
                "frames_per_crop": per_crop or "all", "rows": plan.num_rows, "code_version": code_version}
    images = write_frames(out_dir, plan, manifest, export.classes)
    return {**manifest, "out_dir": str(Path(out_dir).absolute()), "images": images}
