"""Writing an evaluation's results and reading what it imports: result tables (Parquet),
charts (PNG) and a report (JSON) into an ``EvaluationLayout``; a predictions CSV as text
columns; the frame export's JPEGs.

Every file is written under a temporary name and renamed (``media.files``). The report is
written last and lists the sha256 of every file the evaluation wrote, so a folder whose
report matches its files is complete. A refused input stores nothing: the callers read and
check everything before the first write.

Reads and writes files; no Dagster, no torch.
"""

import hashlib
import json
from pathlib import Path

import cv2
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from vitcow_assets.evaluation.charts import Picture
from vitcow_assets.evaluation.inputs import EvaluationInputError
from vitcow_assets.footage.layout import EvaluationLayout
from vitcow_assets.media.files import atomic_dir, atomic_file
from vitcow_assets.media.parquet import write_table
from vitcow_assets.media.video import iter_frames

JPEG_QUALITY = 95


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_results(layout: EvaluationLayout, tables: dict[str, pa.Table], charts: dict[str, Picture], report_name: str, report: dict) -> Path:
    """``tables`` and ``charts`` by name, then the report naming their sha256; the report's path."""
    layout.root.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in tables.items():
        write_table(layout.table(name), table)
        files[layout.table(name).name] = _digest(layout.table(name))
    for name, picture in charts.items():
        with atomic_file(layout.chart(name)) as tmp:
            tmp.write_bytes(picture.png())
        files[layout.chart(name).name] = _digest(layout.chart(name))
    with atomic_file(layout.report(report_name)) as tmp:
        tmp.write_text(json.dumps({**report, "files": files}, indent=2, sort_keys=True, default=str) + "\n")
    return layout.report(report_name)


def read_table(layout: EvaluationLayout, name: str) -> pa.Table:
    return pq.read_table(layout.table(name))


def read_report(layout: EvaluationLayout, name: str) -> dict:
    return json.loads(layout.report(name).read_text())


def read_predictions_csv(path) -> pa.Table:
    """A predictions file's rows, every column as text (each value is checked later, by row)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            header = handle.readline().decode("utf-8", "replace").strip().split(",")
        convert = pacsv.ConvertOptions(column_types={name.strip(): pa.string() for name in header}, strings_can_be_null=False)
        table = pacsv.read_csv(path, convert_options=convert)
    except FileNotFoundError:
        raise EvaluationInputError(f"{path}: no such file") from None
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise EvaluationInputError(f"{path}: not a CSV file with a header row ({str(exc).splitlines()[0]})") from None
    return table.rename_columns([c.strip() for c in table.column_names])


def write_frames(out_dir, plan: pa.Table, manifest: dict, classes) -> int:
    """The frame export: each row of ``plan`` (``frames.FRAME_SCHEMA``) decoded from its
    crop and written as a JPEG at ``image``, a folder for every class in every split (empty
    where it has no crop: an image classifier that numbers the class folders in name order
    then numbers them as ``class_mapping.txt`` does, written beside), the plan as
    ``frames.parquet`` and ``manifest`` as ``frames.json``; the folder is built aside and
    swapped in. The images written."""
    rows = plan.to_pylist()
    by_crop: dict[str, list[dict]] = {}
    for row in rows:
        by_crop.setdefault(row["crop_path"], []).append(row)
    written = 0
    with atomic_dir(out_dir) as tmp:
        for split in ("train", "val", "test"):
            for name in classes:
                (tmp / split / name).mkdir(parents=True)
        for crop_path, frames in by_crop.items():
            wanted = {r["frame_index"]: r["image"] for r in frames}
            found = 0
            for index, rgb in iter_frames(crop_path, wanted):
                target = tmp / wanted[index]
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                target.write_bytes(data.tobytes())
                found += 1
            if found != len(wanted):
                raise EvaluationInputError(f"{crop_path}: {len(wanted) - found} of the {len(wanted)} frames asked for could not be decoded (the file is shorter than the splits table says)")
            written += found
        write_table(tmp / "frames.parquet", plan)
        (tmp / "class_mapping.txt").write_text("".join(f"{c}\n" for c in classes))
        (tmp / "frames.json").write_text(json.dumps({**manifest, "images": written}, indent=2, sort_keys=True) + "\n")
    return written
