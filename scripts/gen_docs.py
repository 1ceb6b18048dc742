"""Regenerate the generated blocks of docs/*.md from the code (table schemas, settings).

A block is ``<!-- generated:KEY -->`` ... ``<!-- /generated -->``; its content is what
``BLOCKS[KEY]()`` returns. Run from the repository root after changing a schema or a
setting:

    .venv/bin/python scripts/gen_docs.py          # rewrite the blocks in place
    .venv/bin/python scripts/gen_docs.py --check  # exit 1 if any block is out of date

The test suite runs the check (``vitcow_assets_tests/test_docs.py``).
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the embedding width the tables doc shows (VideoMAE-Base; the table's is its checkpoint's)
EMBEDDING_DIM_SHOWN = 768
BLOCK = re.compile(r"(<!-- generated:(?P<key>[\w:.-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def _schemas() -> dict:
    import pyarrow as pa

    from vitcow_assets.core import catalog, embeddings, tables
    from vitcow_assets.evaluation import frames, probe, retrieval, scorecard
    from vitcow_assets.evaluation.provenance import schema_with_lineage
    from vitcow_assets.lineage import builds

    return {
        "schema:eval_retrieval": schema_with_lineage(retrieval.RETRIEVAL_FIELDS),
        "schema:eval_probe_runs": schema_with_lineage(probe.RUN_FIELDS),
        "schema:eval_probe_curve": schema_with_lineage(probe.CURVE_FIELDS),
        "schema:eval_scorecard": schema_with_lineage(scorecard.SCORE_FIELDS),
        "schema:eval_classes": pa.schema(scorecard.CLASS_FIELDS),
        "schema:eval_confusion": pa.schema(scorecard.CONFUSION_FIELDS),
        "schema:eval_frames": frames.FRAME_SCHEMA,
        "schema:clips": tables.CLIPS_SCHEMA,
        "schema:masks": tables.MASKS_SCHEMA,
        "schema:crops": tables.CROPS_SCHEMA,
        "schema:tracks": tables.TRACKS_SCHEMA,
        "schema:catalog": catalog.CATALOG_SCHEMA,
        "schema:dataset_builds": builds.BUILD_SCHEMA,
        "schema:embeddings": embeddings.embeddings_schema(EMBEDDING_DIM_SHOWN),
    }


def _settings() -> dict:
    from vitcow_assets.core.clips import ClipSettings
    from vitcow_assets.core.identity import LinkSettings
    from vitcow_assets.encoders.settings import EncoderSettings
    from vitcow_assets.evaluation.settings import ProbeSettings, RetrievalSettings
    from vitcow_assets.footage.settings import StorageSettings
    from vitcow_assets.labelling.settings import LabelSettings
    from vitcow_assets.segmenters import FAMILIES, SegmenterSettings, family_settings
    from vitcow_assets.stages.cropping import CropSettings

    out = {
        "settings:storage": (StorageSettings, "", False, True),
        "settings:segmenter": (SegmenterSettings, "", True, True),
        "settings:clips": (ClipSettings, "", True, False),
        "settings:crops": (CropSettings, "", True, False),
        "settings:link": (LinkSettings, "link", True, True),
        "settings:encoder": (EncoderSettings, "encoder", True, True),
        "settings:retrieval": (RetrievalSettings, "retrieval", True, True),
        "settings:probe": (ProbeSettings, "probe", True, True),
        "settings:labels": (LabelSettings, "", False, True),
    }
    for family in FAMILIES:
        out[f"settings:{family}"] = (family_settings(family), family, True, True)
    return out


def blocks() -> dict[str, str]:
    from vitcow_assets.core.settings import settings_markdown
    from vitcow_assets.core.tables import schema_markdown

    out = {key: schema_markdown(schema) for key, schema in _schemas().items()}
    for key, (cls, prefix, flags, env) in _settings().items():
        out[key] = settings_markdown(cls, prefix, flags=flags, env=env)
    return out


def render(text: str, generated: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        key = match.group("key")
        if key not in generated:
            raise KeyError(f"unknown generated block {key!r}")
        return f"{match.group(1)}{generated[key]}\n{match.group(4)}"

    return BLOCK.sub(replace, text)


def main(argv: list[str]) -> int:
    generated = blocks()
    stale = []
    for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = path.read_text()
        new = render(text, generated)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if "--check" not in argv:
                path.write_text(new)
    if stale:
        print(("out of date: " if "--check" in argv else "rewrote: ") + ", ".join(map(str, stale)))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
