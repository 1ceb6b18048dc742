"""Comparing what two runs wrote: every file of a partition's folder, byte for byte, except
what names the run or the storage root (run ids, absolute paths under the home, the time a
file was registered), which is taken out before comparing."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from vitcow_assets.core.tables import RUN_ID_COLUMNS, RUN_ID_KEYS

#: fields of the JSON records that say when, not what
WHEN_FIELDS = ("registered_at",)


def files_under(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` by its path relative to it."""
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _replace(value, home: str):
    return value.replace(home, "<home>") if isinstance(value, str) else value


def normalized_table(path: Path, home: Path) -> tuple[list[dict], dict]:
    """A Parquet file's rows and key-value metadata without run ids, the home replaced by ``<home>``."""
    table = pq.read_table(path)
    keep = [n for n in table.column_names if n not in RUN_ID_COLUMNS]
    rows = [{k: _deep_replace(v, str(home)) for k, v in row.items()} for row in table.select(keep).to_pylist()]
    metadata = {
        k.decode(): v.decode().replace(str(home), "<home>")
        for k, v in (table.schema.metadata or {}).items()
        if k not in RUN_ID_KEYS and k != b"ARROW:schema"
    }
    return rows, metadata


def _deep_replace(value, home: str):
    if isinstance(value, list):
        return [_deep_replace(v, home) for v in value]
    if isinstance(value, dict):
        return {k: _deep_replace(v, home) for k, v in value.items()}
    return _replace(value, home)


def normalized_json(path: Path, home: Path) -> dict:
    record = json.loads(path.read_text())
    return {k: _deep_replace(v, str(home)) for k, v in record.items() if k not in WHEN_FIELDS}


def differences(folder_a: Path, home_a: Path, folder_b: Path, home_b: Path) -> list[str]:
    """What differs between two partition folders (empty: the same outputs): files present
    in one only, media and other files not byte-identical, tables and records not equal once
    run ids, home paths and registration times are taken out."""
    a, b = files_under(folder_a), files_under(folder_b)
    problems = [f"only in one run: {name}" for name in sorted(set(a) ^ set(b))]
    for name in sorted(set(a) & set(b)):
        if name.endswith(".parquet"):
            same = normalized_table(a[name], home_a) == normalized_table(b[name], home_b)
        elif name.endswith(".json"):
            same = normalized_json(a[name], home_a) == normalized_json(b[name], home_b)
        else:
            same = a[name].read_bytes() == b[name].read_bytes()
        if not same:
            problems.append(f"differs: {name}")
    return problems
