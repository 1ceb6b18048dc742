"""Labels from and to CSV files.

Import reads either form:

- with a header naming ``crop_path`` (or ``crop_id``) and ``label`` (optional
  ``start_frame`` and ``end_frame``, both or neither per row, and ``unsure``: true/false;
  other columns are ignored, but every row has exactly the header's fields): crop paths
  absolute or relative to ``$VITCOW_HOME``;
- the older scripts' headerless ``name,label``: ``name`` is a crop's file name or the end of
  its path (``obj0001.mp4``, ``c00003/obj0001.mp4``, with or without ``.mp4``) or its
  crop_id, and must name exactly one crop of the catalog.

Every row is checked before anything is stored: an unknown label, an unknown (or ambiguous)
crop, a field too many or too few, or a bad segment is reported in one line with its row number (the file's line number,
the header being row 1), and a file with any bad row imports nothing. A good file is stored
in one transaction, rows in file order (a crop listed twice: the later row is current).

The same forms mark gold crops (``vitcow labels gold import``: ``parse_label_csv``).

Export writes ``crop_path,label,annotator,labelled_at,start_frame,end_frame,unsure``: the current
label of every (crop, annotator), sorted by crop path and annotator, ``labelled_at`` in ISO
8601 UTC, empty frames where the label has no segment. Labels of crops no longer in the
catalog are not exported (they are counted: see ``snapshot`` for the orphans).

May import the store, the taxonomy, the snapshot schemas and ``media.files``; no web framework, no dagster.
"""

import csv
import dataclasses
import io
import os
import posixpath
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from vitcow_assets.core.taxonomy import Taxonomy
from vitcow_assets.labelling.events import LabelError, LabelEvent, check_segment, iso_utc
from vitcow_assets.labelling.store import LabelStore
from vitcow_assets.media.files import atomic_file

EXPORT_COLUMNS = ["crop_path", "label", "annotator", "labelled_at", "start_frame", "end_frame", "unsure"]
#: the columns a header may name that import reads (one of crop_path / crop_id is needed)
_READ_COLUMNS = ("crop_path", "crop_id", "label", "start_frame", "end_frame", "unsure")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")
_TAIL_PARTS = 4  # how many trailing path components a headerless name may give


class LabelImportError(ValueError):
    """A file that cannot be imported: one line per bad row (``problems``); nothing was stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class ImportRow:
    row: int
    crop_id: str
    label: str
    start_frame: int | None = None
    end_frame: int | None = None
    unsure: bool = False

    def as_label(self) -> dict:
        return {"crop_id": self.crop_id, "label": self.label, "start_frame": self.start_frame, "end_frame": self.end_frame, "unsure": self.unsure}


@dataclasses.dataclass(frozen=True)
class ExportResult:
    rows: int
    orphans: int


class _CropIndex:
    """Find catalog crops by path (header form) or by name (headerless form)."""

    def __init__(self, catalog: pa.Table, home: str | os.PathLike) -> None:
        self.home = str(Path(home).absolute())
        cols = catalog.select(["crop_id", "crop_path", "frames"]).to_pydict()
        self.ids = set(cols["crop_id"])
        self.frames = dict(zip(cols["crop_id"], cols["frames"]))
        self.by_path = {posixpath.normpath(p): c for c, p in zip(cols["crop_id"], cols["crop_path"])}
        self.by_name: dict[str, set[str]] = {c: {c} for c in cols["crop_id"]}
        for c, p in zip(cols["crop_id"], cols["crop_path"]):
            parts = posixpath.normpath(p).split("/")
            for k in range(1, min(_TAIL_PARTS, len(parts)) + 1):
                tail = "/".join(parts[-k:])
                for key in {tail, tail.removesuffix(".mp4")}:
                    self.by_name.setdefault(key, set()).add(c)

    def by_crop_path(self, text: str) -> tuple[str | None, str]:
        path = posixpath.normpath(text if posixpath.isabs(text) else posixpath.join(self.home, text))
        found = self.by_path.get(path)
        return found, "" if found else f"unknown crop {text!r} (no catalog crop at {path})"

    def by_crop_id(self, text: str) -> tuple[str | None, str]:
        return (text, "") if text in self.ids else (None, f"unknown crop_id {text!r} (not in the catalog)")

    def by_crop_name(self, text: str) -> tuple[str | None, str]:
        name = posixpath.normpath(text.replace("\\", "/"))
        if posixpath.isabs(name):
            return self.by_crop_path(name)
        found = self.by_name.get(name, set())
        if len(found) == 1:
            return next(iter(found)), ""
        if found:
            return None, f"{text!r} names {len(found)} crops; give its crop_path (header crop_path,label)"
        return None, f"unknown crop {text!r} (no catalog crop has that name)"


def _frame(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.lstrip("-").isdigit():
        raise LabelError(f"frame {value!r} is not an integer")
    return int(value)


def _unsure(value: str) -> bool:
    text = value.strip().lower()
    if text not in _TRUE + _FALSE:
        raise LabelError(f"unsure {value!r} is not true or false")
    return text in _TRUE


def _row(n: int, where: tuple[str | None, str], label: str, extra: dict[str, str], taxonomy: Taxonomy, index: _CropIndex) -> ImportRow | str:
    """The parsed row, or the one-line problem with it."""
    crop_id, problem = where
    if not label:
        return f"row {n}: no label"
    if taxonomy.get(label) is None:
        return f"row {n}: unknown label {label!r} (not in taxonomy {taxonomy.name!r})"
    if crop_id is None:
        return f"row {n}: {problem}"
    try:
        start, end = _frame(extra.get("start_frame", "")), _frame(extra.get("end_frame", ""))
        check_segment(start, end, index.frames[crop_id])
        unsure = _unsure(extra.get("unsure", ""))
    except LabelError as exc:
        return f"row {n}: {exc}"
    return ImportRow(n, crop_id, label, start, end, unsure)


@dataclasses.dataclass(frozen=True)
class _Header:
    names: list[str]
    #: column read -> its index
    columns: dict[str, int]


def _header(cells: list[str]) -> _Header | None:
    names = [h.strip().lower() for h in cells]
    if "label" not in names or not ({"crop_path", "crop_id"} & set(names)):
        return None
    return _Header(names, {name: names.index(name) for name in _READ_COLUMNS if name in names})


def _count_problem(cells: list[str], names: list[str]) -> str | None:
    """The one-line problem of a row with another number of fields than ``names``."""
    if len(cells) > len(names):
        return f"{len(cells)} fields where the header names {len(names)}: extra field {cells[len(names)].strip()!r}"
    if len(cells) < len(names):
        return f"{len(cells)} fields where the header names {len(names)}: no {names[len(cells)]!r}"
    return None


def _fields(cells: list[str], header: _Header | None, index: _CropIndex):
    """(crop lookup, label, {start_frame, end_frame, unsure texts}) of one row, or its problem."""
    if header is None:
        if len(cells) != 2:
            extra = f": extra field {cells[2].strip()!r}" if len(cells) > 2 else ""
            return f"expected name,label (2 columns), found {len(cells)}{extra}"
        return index.by_crop_name(cells[0].strip()), cells[1].strip(), {}
    problem = _count_problem(cells, header.names)
    if problem:
        return problem
    values = {col: cells[i].strip() for col, i in header.columns.items()}
    if "crop_path" in values:
        crop = values["crop_path"]
        where = index.by_crop_path(crop) if crop else (None, "no crop_path")
    else:
        where = index.by_crop_id(values["crop_id"]) if values["crop_id"] else (None, "no crop_id")
    return where, values["label"], values


def parse_label_csv(text: str, catalog: pa.Table, taxonomy: Taxonomy, home: str | os.PathLike, name: str = "labels") -> list[ImportRow]:
    """The rows of a label file's text, or ``LabelImportError`` listing every bad row."""
    index = _CropIndex(catalog, home)
    lines = list(csv.reader(io.StringIO(text)))
    header = _header(lines[0]) if lines else None
    rows, problems = [], []
    for n, cells in enumerate(lines, start=1):
        if (header is not None and n == 1) or not any(c.strip() for c in cells):
            continue
        fields = _fields(cells, header, index)
        parsed = f"row {n}: {fields}" if isinstance(fields, str) else _row(n, *fields, taxonomy, index)
        if isinstance(parsed, ImportRow):
            rows.append(parsed)
        else:
            problems.append(f"{name}: {parsed}")
    if not rows and not problems:
        problems.append(f"{name}: no labels in the file")
    if problems:
        raise LabelImportError(problems)
    return rows


def import_labels(store: LabelStore, path: str | os.PathLike, catalog: pa.Table, taxonomy: Taxonomy,
                  annotator: str, home: str | os.PathLike) -> list[LabelEvent]:
    """Import a label file for ``annotator``: every row, in one transaction, or nothing."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelImportError([f"{path}: cannot read ({exc})"]) from None
    rows = parse_label_csv(text, catalog, taxonomy, home, str(path))
    try:
        return store.add_labels([{**r.as_label(), "annotator": annotator} for r in rows], source="import")
    except LabelError as exc:  # e.g. an unusable annotator name: nothing was stored
        raise LabelImportError([f"{path}: {exc}"]) from None


def export_labels(current: pa.Table, catalog: pa.Table, path: str | os.PathLike) -> ExportResult:
    """Write ``current`` labels (the store's ``current_labels``) of catalog crops to ``path``, atomically."""
    paths = dict(zip(catalog["crop_id"].to_pylist(), catalog["crop_path"].to_pylist()))
    known = current.filter(pc.is_in(current["crop_id"], value_set=catalog["crop_id"]))
    rows = []
    for r in known.to_pylist():
        frames = ["" if r[k] is None else str(r[k]) for k in ("start_frame", "end_frame")]
        rows.append([paths[r["crop_id"]], r["label"], r["annotator"], iso_utc(r["labelled_at"]), *frames, "true" if r["unsure"] else "false"])
    rows.sort(key=lambda r: (r[0], r[2]))
    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            writer.writerows(rows)
    return ExportResult(len(rows), current.num_rows - known.num_rows)


def import_gold(store: LabelStore, path: str | os.PathLike, catalog: pa.Table, taxonomy: Taxonomy, home: str | os.PathLike) -> int:
    """Mark the crops of a label file as gold with its labels: every row, in one
    transaction, or nothing (``LabelImportError``); returns the rows stored."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelImportError([f"{path}: cannot read ({exc})"]) from None
    rows = parse_label_csv(text, catalog, taxonomy, home, str(path))
    return store.add_gold([r.as_label() for r in rows], source=Path(path).name)
