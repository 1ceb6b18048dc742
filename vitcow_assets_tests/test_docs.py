"""The docs say what the code does: generated blocks (table schemas with names, types and
descriptions; settings with variables, flags and defaults) match the code, every doc the
README links exists, and CI runs the README's test command."""

import importlib.util
import re
from pathlib import Path

from vitcow_assets.core.settings import describe
from vitcow_assets.core.tables import CROPS_SCHEMA, MASKS_SCHEMA, schema_descriptions

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_match_the_code_and_every_block_is_in_a_doc():
    gen = _generator()
    generated = gen.blocks()
    seen = set()
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        assert gen.render(text, generated) == text, f"{path.name} is out of date: run scripts/gen_docs.py"
        seen |= {m.group("key") for m in gen.BLOCK.finditer(text)}
    assert seen == set(generated)


def test_the_schema_tables_name_every_column_with_its_type_and_description():
    text = (ROOT / "docs" / "tables.md").read_text()
    for key, schema in (("masks", MASKS_SCHEMA), ("crops", CROPS_SCHEMA)):
        section = text.split(f"<!-- generated:schema:{key} -->")[1].split("<!-- /generated -->")[0]
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        documented = [tuple(c.strip().strip("`") for c in row.strip("|").split(" | ")) for row in rows]
        expected = [(n, t.replace("<", "&lt;").replace(">", "&gt;"), d) for n, t, d in schema_descriptions(schema)]
        assert documented == expected


def test_every_sam3_setting_is_documented_with_its_variable_and_flag():
    from vitcow_assets.segmenters.sam3 import Sam3Settings

    text = (ROOT / "docs" / "configuration.md").read_text()
    for item in describe(Sam3Settings, "sam3"):
        assert f"`{item.env}`" in text and f"`{item.flag}`" in text


def test_readme_is_short_links_only_existing_docs_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).is_file(), target
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
