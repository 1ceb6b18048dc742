"""Writing a dataset folder: VideoMAE lists, pre-training lists, the splits table, the
Hugging Face index, training subsets, a folder-per-label layout of hard links, the
statistics chart, and ``dataset.json``.

Layout of ``OUT_DIR`` (see ``formats`` for the file formats)::

    train.csv val.csv test.csv class_mapping.txt   VideoMAE fine-tuning
    pretrain_train.csv pretrain_test.csv           VideoMAE pre-training (when given)
    pretrain.parquet splits.parquet                the tables behind the lists
    hf/{train,validation,test}.parquet             Hugging Face index (optional)
    subsets/train_<size>_r<repeat>.csv             efficiency subsets (when given)
    folders/<split>/<class>/<video_id>_<crop_id>.mp4   hard links (optional)
    stats.png                                      the chart (when given)
    dataset.json                                   lineage, settings, rows, sha256 of every file

Every file is written under a temporary name and renamed; folders are built aside and
swapped in. ``dataset.json`` is removed first and written last, so a folder whose
``dataset.json`` is missing is an interrupted export, and one whose files match its hashes
is complete. Outputs of an earlier export that this one does not make are removed. The
folder layout links, never copies: crops on another file system are a one-line error.
"""

import dataclasses
import errno
import hashlib
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.datasets import formats
from vitcow_assets.datasets.chart import Chart
from vitcow_assets.datasets.inputs import DatasetInputError, require
from vitcow_assets.datasets.lineage import Lineage, manifest, sources
from vitcow_assets.datasets.splits import SPLIT_NAMES
from vitcow_assets.datasets.subsets import Subsets
from vitcow_assets.media.files import atomic_dir, atomic_file

MANIFEST = "dataset.json"
#: what an export may make besides the VideoMAE files (removed when this one does not)
OPTIONAL_OUTPUTS = ("pretrain_train.csv", "pretrain_test.csv", "pretrain.parquet", "stats.png", "hf", "subsets", "folders")


class DatasetExportError(OSError):
    """An export that cannot be written; the message is one line naming the file."""


@dataclasses.dataclass(frozen=True)
class Exported:
    out_dir: Path
    #: file name (relative, posix) -> sha256 of its bytes
    files: dict[str, str]
    rows: dict[str, int]
    manifest: dict


def _split(table: pa.Table, name: str) -> pa.Table:
    return table.filter(pc.equal(table["split"], name))


def render_files(splits: pa.Table, taxonomy: Taxonomy, pretrain: pa.Table | None = None, subsets: Subsets | None = None,
                 chart: Chart | None = None, root: str | None = None, hf: bool = True) -> dict[str, bytes]:
    """Every file of the export but the folder layout and ``dataset.json``: name -> bytes."""
    require(splits, ("crop_id", "crop_path", "class_index", "split"), "splits")
    files = {f"{s}.csv": formats.list_file(_split(splits, s), "class_index", root) for s in SPLIT_NAMES}
    files["class_mapping.txt"] = formats.class_mapping(taxonomy.classes)
    files["splits.parquet"] = formats.parquet_bytes(splits)
    if pretrain is not None:
        for s in ("train", "test"):
            files[f"pretrain_{s}.csv"] = formats.list_file(_split(pretrain, s), "frames", root)
        files["pretrain.parquet"] = formats.parquet_bytes(pretrain)
    if hf:
        for s in SPLIT_NAMES:
            files[f"hf/{formats.HF_SPLIT_NAMES[s]}.parquet"] = formats.parquet_bytes(formats.hf_table(_split(splits, s), s, taxonomy.classes, root))
    if subsets is not None:
        for repeat in range(1, subsets.repeats + 1):
            for size in subsets.sizes:
                files[f"subsets/train_{size}_r{repeat}.csv"] = formats.list_file(subsets.subset(repeat, size), "class_index", root)
        files["subsets/subsets.parquet"] = formats.parquet_bytes(subsets.table)
    if chart is not None:
        files["stats.png"] = chart.png()
    return files


def _link_name(row: dict) -> str:
    return f"{row['video_id']}_{row['crop_id']}{Path(row['crop_path']).suffix}"


def _safe_component(name: str, what: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DatasetInputError(f"{what} {name!r} cannot be a folder name")
    return name


def _link(src: str, dest: Path, folder: Path) -> None:
    try:
        os.link(src, dest)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise DatasetExportError(f"{folder}: cannot hard-link {src}: it is on another file system (export onto the crops' file system, or leave out the folder layout)") from None
        raise DatasetExportError(f"{folder}: cannot hard-link {src} ({exc.strerror or exc})") from None


def write_label_folders(folder: Path, splits: pa.Table, classes) -> tuple[int, str]:
    """``folder/<split>/<class>/<video_id>_<crop_id><ext>`` hard links to every crop;
    returns the number of links and a sha256 of the listing (link -> target)."""
    require(splits, ("crop_id", "crop_path", "class_index", "split", "video_id"), "splits")
    classes = [_safe_component(c, "class") for c in classes]
    rows = sorted(splits.select(["split", "class_index", "video_id", "crop_id", "crop_path"]).to_pylist(), key=lambda r: (r["split"], r["class_index"], r["crop_id"]))
    listing = hashlib.sha256()
    with atomic_dir(folder) as tmp:
        for r in rows:
            rel = f"{r['split']}/{classes[r['class_index']]}/{_safe_component(_link_name(r), 'crop file name')}"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            _link(r["crop_path"], tmp / rel, folder)
            listing.update(f"{rel} -> {r['crop_path']}\n".encode())
    return len(rows), listing.hexdigest()


def _write_files(out_dir: Path, files: dict[str, bytes]) -> None:
    top = {n: b for n, b in files.items() if "/" not in n}
    groups: dict[str, dict[str, bytes]] = {}
    for name, data in files.items():
        if "/" in name:
            head, rest = name.split("/", 1)
            groups.setdefault(head, {})[rest] = data
    for name, data in sorted(top.items()):
        with atomic_file(out_dir / name) as tmp:
            tmp.write_bytes(data)
    for head, members in sorted(groups.items()):
        with atomic_dir(out_dir / head) as tmp:
            for rest, data in sorted(members.items()):
                (tmp / rest).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rest).write_bytes(data)


def _remove_stale(out_dir: Path, made: set[str]) -> None:
    for name in OPTIONAL_OUTPUTS:
        path = out_dir / name
        if name in made or not (path.exists() or path.is_symlink()):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _rows(splits: pa.Table, pretrain: pa.Table | None, subsets: Subsets | None) -> dict[str, int]:
    counts = {s: _split(splits, s).num_rows for s in SPLIT_NAMES}
    if pretrain is not None:
        counts.update({f"pretrain_{s}": _split(pretrain, s).num_rows for s in ("train", "test")})
    if subsets is not None:
        counts["subset_files"] = subsets.repeats * len(subsets.sizes)
    return counts


def export_dataset(out_dir, splits: pa.Table, taxonomy: Taxonomy, lineage: Lineage, *, pretrain: pa.Table | None = None,
                   subsets: Subsets | None = None, chart: Chart | None = None, report: dict | None = None,
                   root: str | None = None, hf: bool = True, label_folders: bool = False) -> Exported:
    """Write the dataset into ``out_dir`` (module docstring); the same inputs give the same bytes."""
    out_dir = Path(out_dir)
    root = None if root is None else str(Path(root).absolute())
    files = render_files(splits, taxonomy, pretrain, subsets, chart, root, hf)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    made = {n.split("/", 1)[0] for n in files}
    hashes = {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    rows = _rows(splits, pretrain, subsets)
    if label_folders:
        rows["folder_links"], hashes["folders/"] = write_label_folders(out_dir / "folders", splits, taxonomy.classes)
        made.add("folders")
    _remove_stale(out_dir, made)
    _write_files(out_dir, files)
    extra = {"sources": sources(splits), **({"report": report} if report is not None else {})}
    document = manifest(lineage, rows, hashes, root, extra)
    with atomic_file(out_dir / MANIFEST) as tmp:
        tmp.write_bytes(formats.json_bytes(document))
    return Exported(out_dir, hashes, rows, document)
