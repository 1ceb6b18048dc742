"""The evaluation assets: what a checkpoint's embeddings are worth (``retrieval_eval``,
``probe_eval``: one partition per registered checkpoint, like ``crop_embeddings``) and an
imported fine-tuned model's scorecard (``predictions_eval``: one partition per predictions
file). Each runs one function of ``evaluation.runs`` on the dataset export the ``dataset``
resource names (``vitcow eval ... --dataset DIR`` sets it) and shows its results: the tables
as table metadata, the Hit@k curve with its chance line, the probe's curve over subset sizes
and the confusion matrices as thumbnails (data URIs) with the full-size PNG's path (and URL
where the storage root is served).

``crop_embeddings`` is the encoder's asset (its own module); these depend on it by key.
Settings: ``retrieval`` and ``probe`` resources (``evaluation.settings.RetrievalSettings``,
``evaluation.settings.ProbeSettings``; environment ``VITCOW_RETRIEVAL_<FIELD>``,
``VITCOW_PROBE_<FIELD>``).
"""

import math

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.settings import build, record
from vitcow_assets.defs.code_versions import versioned_asset
from vitcow_assets.defs.config import config_class, from_environment, setting_values
from vitcow_assets.defs.datasets import DatasetResource, dataset_export
from vitcow_assets.defs.metadata import column_schema
from vitcow_assets.defs.partitions import checkpoint_partitions, prediction_partitions
from vitcow_assets.defs.resources import VitcowStorage
from vitcow_assets.evaluation.charts import Picture
from vitcow_assets.evaluation.inputs import EvaluationInputError
from vitcow_assets.evaluation.predictions import AGGREGATIONS, PredictionsError
from vitcow_assets.evaluation.runs import run_predictions, run_probe, run_retrieval
from vitcow_assets.evaluation.settings import ProbeSettings, RetrievalSettings
from vitcow_assets.runtime.version import code_version

GROUP = "evaluation"
#: the encoder's asset (one partition per checkpoint), depended on by key
CROP_EMBEDDINGS = dg.AssetKey("crop_embeddings")
#: rows shown in a table's metadata at most
TABLE_ROWS = 60


class _Settings(dg.ConfigurableResource):
    def settings_of(self, cls: type):
        try:
            return build(cls, setting_values(cls, self), where=lambda name: f"{cls.__name__} {name}")
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from None


RetrievalResource = config_class(RetrievalSettings, "RetrievalResource", base=_Settings, doc=RetrievalSettings.__doc__)
ProbeResource = config_class(ProbeSettings, "ProbeResource", base=_Settings, doc=ProbeSettings.__doc__)


class PredictionsConfig(dg.Config):
    """The predictions file to import (CSV: per crop, by ``video_path`` or ``crop_id``, or per
    frame, by ``image_path`` or ``crop_id`` + ``frame_index``)."""

    path: str
    aggregate: str = "vote"


def _cell(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value if isinstance(value, (int, str, bool)) or value is None else str(value)


def table_value(table: pa.Table, columns: list[str], limit: int = TABLE_ROWS) -> dg.TableMetadataValue:
    """``columns`` of the first ``limit`` rows of ``table`` for the UI, floats to 4 places."""
    part = table.select(columns).slice(0, limit)
    records = [dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in part.to_pylist()]
    return dg.MetadataValue.table(records=records, schema=column_schema(part.schema))


def picture_metadata(name: str, picture: Picture, path, storage, alt: str) -> dict:
    """A chart: its thumbnail as a data URI, its full-size PNG's path (and URL where served)."""
    url = storage.url_of(path)
    return {
        name: dg.MetadataValue.md(picture.thumbnail_markdown(alt)),
        f"{name}_path": dg.MetadataValue.path(str(path)),
        **({f"{name}_url": dg.MetadataValue.url(url)} if url else {}),
    }


def _lineage(provenance, layout) -> dict:
    return {
        "dataset_fingerprint": provenance.dataset_fingerprint,
        **({"checkpoint_sha256": provenance.checkpoint_sha256} if provenance.checkpoint_sha256 else {}),
        **({"predictions_sha256": provenance.predictions_sha256} if provenance.predictions_sha256 else {}),
        "evaluation_code_version": provenance.code_version,
        "results_dir": dg.MetadataValue.path(str(layout.root)),
    }


def _failing(function, *args):
    """``function(*args)``; an input it refuses fails the step with the same text."""
    try:
        return function(*args)
    except (EvaluationInputError, PredictionsError, ValueError) as exc:
        raise dg.Failure(description=str(exc)) from None


def _hit_summary(rows: list[dict]) -> str:
    parts = []
    for setting in ("cross_farm", "within_farm"):
        mine = [r for r in rows if r["setting"] == setting and r["k"] == min(x["k"] for x in rows)]
        if mine:
            best = max(mine, key=lambda r: r["hit_micro"])
            parts.append(f"{setting.replace('_', '-')} Hit@{best['k']} **{best['hit_micro']:.3f}** ({best['metric']}) against chance {best['chance_micro']:.3f}")
    return "; ".join(parts) or "no setting could be scored"


RETRIEVAL_COLUMNS = ["setting", "metric", "k", "hit_micro", "chance_micro", "hit_micro_se", "hit_macro", "chance_macro", "hit_macro_se", "queries", "index_size", "repeats"]


@versioned_asset(group_name=GROUP, kinds={"parquet", "png"}, partitions_def=checkpoint_partitions, deps=[CROP_EMBEDDINGS, dataset_export])
def retrieval_eval(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource, retrieval: RetrievalResource) -> dg.MaterializeResult:
    """Hit@k (k = 1, 2, 3, 5, 10; micro and macro; Euclidean and cosine) of the checkpoint's
    embeddings: the test split's crops querying the other farms' (cross-farm), and queries and
    index split by track within each farm over seeded repeats (within-farm), each beside its
    exact chance level."""
    settings = retrieval.settings_of(RetrievalSettings)
    run = _failing(run_retrieval, storage.root(), context.partition_key, dataset.export_dir(storage), settings, code_version())
    table, rows = run.result.table, run.result.table.to_pylist()
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(_hit_summary(rows)),
        **picture_metadata("hit_at_k", run.chart, run.layout.chart("retrieval"), storage, "Hit@k with its chance line"),
        "retrieval": table_value(table, RETRIEVAL_COLUMNS),
        "dagster/row_count": table.num_rows, "path": dg.MetadataValue.path(str(run.layout.table("retrieval"))),
        **_lineage(run.inputs.provenance, run.layout), "notes": dg.MetadataValue.json(list(run.result.notes)),
        "settings": dg.MetadataValue.json(record(settings)),
    })


CURVE_COLUMNS = ["subset_size", "train_crops", "repeats", "balanced_accuracy", "balanced_accuracy_se", "accuracy", "f1_macro", "chance_balanced_accuracy"]
RUN_COLUMNS = ["subset", "train_crops", "capped", "train_classes", "c", "val_balanced_accuracy", "accuracy", "balanced_accuracy", "f1_macro", "map_macro", "notes"]


@versioned_asset(group_name=GROUP, kinds={"parquet", "png"}, partitions_def=checkpoint_partitions, deps=[CROP_EMBEDDINGS, dataset_export])
def probe_eval(context: dg.AssetExecutionContext, storage: VitcowStorage, dataset: DatasetResource, probe: ProbeResource) -> dg.MaterializeResult:
    """A linear probe on the checkpoint's embeddings for every efficiency subset of the
    dataset (and the whole training split), regularisation chosen on validation, scored on the
    frozen test split: the label-efficiency curve, per-class F1 and the confusion matrix."""
    settings = probe.settings_of(ProbeSettings)
    run = _failing(run_probe, storage.root(), context.partition_key, dataset.export_dir(storage), settings, code_version())
    largest = run.result.largest
    best = largest.scorecard.summary
    classes = run.result.classes.filter(pc.equal(run.result.classes["subset"], largest.subset.name))
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(
            f"on {largest.subset.name} ({len(largest.subset.crop_ids)} crops): balanced accuracy **{best['balanced_accuracy']:.3f}**, "
            f"accuracy {best['accuracy']:.3f}, macro F1 {best['f1_macro']:.3f} against chance {1 / best['classes_present']:.3f}"),
        **picture_metadata("probe_curve", run.curve_chart, run.layout.chart("probe_curve"), storage, "probe scores over training crops"),
        **picture_metadata("confusion", run.confusion_chart, run.layout.chart("probe_confusion"), storage, "confusion matrix"),
        "curve": table_value(run.result.curve, CURVE_COLUMNS), "runs": table_value(run.result.runs, RUN_COLUMNS),
        "per_class": table_value(classes, ["class_index", "class_name", "support", "precision", "recall", "f1", "average_precision"]),
        "dagster/row_count": run.result.runs.num_rows, "path": dg.MetadataValue.path(str(run.layout.table("probe_runs"))),
        **_lineage(run.inputs.provenance, run.layout), "notes": dg.MetadataValue.json(list(run.notes)),
        "settings": dg.MetadataValue.json(record(settings)),
    })


SCORE_COLUMNS = ["test_crops", "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "map_macro"]


@versioned_asset(group_name=GROUP, kinds={"parquet", "png"}, partitions_def=prediction_partitions, deps=[dataset_export])
def predictions_eval(context: dg.AssetExecutionContext, config: PredictionsConfig, storage: VitcowStorage, dataset: DatasetResource) -> dg.MaterializeResult:
    """A fine-tuned model's predictions (the seed's `predictions_full.csv`, a crop_id-keyed
    file, or an image classifier's per-frame predictions, aggregated per crop) scored against
    the dataset's test split; a row that matches no crop or disagrees with its label fails
    the step, one line each, and nothing is stored."""
    if config.aggregate not in AGGREGATIONS:
        raise dg.Failure(description=f"run config: aggregate must be one of {', '.join(AGGREGATIONS)}, got {config.aggregate!r}")
    run = _failing(run_predictions, storage.root(), context.partition_key, config.path, dataset.export_dir(storage), code_version(), config.aggregate)
    s = run.scorecard.summary
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(f"{s['test_crops']} test crops ({run.form} predictions): accuracy **{s['accuracy']:.3f}**, "
                                       f"balanced accuracy **{s['balanced_accuracy']:.3f}**, macro F1 {s['f1_macro']:.3f}"),
        **picture_metadata("confusion", run.chart, run.layout.chart("scorecard_confusion"), storage, "confusion matrix"),
        "scorecard": table_value(run.tables["scorecard"], SCORE_COLUMNS),
        "per_class": table_value(run.tables["scorecard_classes"], ["class_index", "class_name", "support", "predicted", "precision", "recall", "f1", "average_precision"]),
        "predictions_path": dg.MetadataValue.path(config.path), "path": dg.MetadataValue.path(str(run.layout.table("scorecard"))),
        **_lineage(run.provenance, run.layout),
    })


def retrieval_from_environment(environ, **overrides) -> "RetrievalResource":
    return from_environment(RetrievalResource, RetrievalSettings, environ, "retrieval", **overrides)


def probe_from_environment(environ, **overrides) -> "ProbeResource":
    return from_environment(ProbeResource, ProbeSettings, environ, "probe", **overrides)


EVALUATION_ASSETS = [retrieval_eval, probe_eval, predictions_eval]
retrieval_job = dg.define_asset_job("retrieval_eval_job", selection=[retrieval_eval], description="Retrieval Hit@k of one checkpoint's embeddings.")
probe_job = dg.define_asset_job("probe_eval_job", selection=[probe_eval], description="The linear probe of one checkpoint's embeddings.")
predictions_job = dg.define_asset_job("predictions_eval_job", selection=[predictions_eval], description="The scorecard of one predictions file.")
EVALUATION_JOBS = [retrieval_job, probe_job, predictions_job]
