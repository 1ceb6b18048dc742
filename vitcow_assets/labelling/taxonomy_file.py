"""Loading a taxonomy: the file ``VITCOW_TAXONOMY`` names, else the one shipped with the package."""

import os
from importlib import resources
from pathlib import Path

from vitcow_assets.core.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy

TAXONOMY_ENV = "VITCOW_TAXONOMY"


def default_taxonomy_text() -> str:
    return resources.files("vitcow_assets.labelling").joinpath("default_taxonomy.yaml").read_text()


def load_taxonomy(path: str | os.PathLike | None = None) -> Taxonomy:
    """The taxonomy at ``path``, else at ``$VITCOW_TAXONOMY``, else the shipped default."""
    path = path or os.environ.get(TAXONOMY_ENV) or None
    if path is None:
        return parse_taxonomy(default_taxonomy_text(), "default taxonomy")
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy ({exc})") from None
    return parse_taxonomy(text, str(path))
