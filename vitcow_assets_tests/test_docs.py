from pathlib import Path

from vitcow_assets.core.tables import CLIPS_SCHEMA, CROPS_SCHEMA, MASKS_SCHEMA, TRACKS_SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def test_readme_documents_every_column_and_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    for schema in (CLIPS_SCHEMA, MASKS_SCHEMA, CROPS_SCHEMA, TRACKS_SCHEMA):
        for name in schema.names:
            assert f"| `{name}` |" in readme, name
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
