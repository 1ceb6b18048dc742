"""Materialization metadata helpers: table schemas, row counts, paths, images."""

import base64
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from vitcow_assets.core.tables import schema_descriptions

#: metadata key of `object_crops`: sha256 of the source bytes the crops were made from
#: (the nightly catch-up compares it with the registered bytes)
SOURCE_SHA256 = "source_sha256"


def table_metadata(path: Path, schema: pa.Schema, rows: int) -> dict:
    return {
        "path": dg.MetadataValue.path(str(path)),
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in schema_descriptions(schema)]
        ),
    }


def image_metadata(path: Path, thumbnail_jpeg: bytes, summary: str) -> dict:
    """A one-line Markdown summary first (short, so the UI shows it inline), the full-size
    image's path, and a small thumbnail as a data URI (the UI puts Markdown of 1,000
    characters or more behind "Show Markdown", which a thumbnail always is)."""
    data = base64.b64encode(thumbnail_jpeg).decode("ascii")
    return {
        "summary": dg.MetadataValue.md(summary),
        "preview_path": dg.MetadataValue.path(str(path)),
        "preview": dg.MetadataValue.md(f"![contact sheet](data:image/jpeg;base64,{data})"),
    }


def tracks_metadata(path: Path, schema: pa.Schema) -> dict:
    """Where the tracks table is, how many tracks it holds and its columns."""
    return {
        "tracks_table": dg.MetadataValue.path(str(path)),
        "tracks": dg.MetadataValue.int(pq.ParquetFile(path).metadata.num_rows),
        "tracks_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, type_, description=desc) for name, type_, desc in schema_descriptions(schema)]
        ),
    }
