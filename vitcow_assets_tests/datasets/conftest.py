import pytest

from vitcow_assets.core.taxonomy import parse_taxonomy
from vitcow_assets.labelling.taxonomy_file import default_taxonomy_text
from vitcow_assets_tests.datasets.synthetic_labels import Scene, synthetic_catalog, synthetic_labels, synthetic_trims

#: three farms × 2 cameras × 3 videos × 8 animals through up to 5 consecutive clips: ~450 crops
SCENE = Scene(videos=3, tracks=8)


@pytest.fixture(scope="session")
def taxonomy():
    """The shipped default (14 fine labels, 8 classes), whatever VITCOW_TAXONOMY says."""
    return parse_taxonomy(default_taxonomy_text(), "default taxonomy")


@pytest.fixture(scope="session")
def catalog():
    return synthetic_catalog(SCENE)


@pytest.fixture(scope="session")
def labels(catalog, taxonomy):
    return synthetic_labels(catalog, taxonomy)


@pytest.fixture(scope="session")
def trims(labels):
    return synthetic_trims(labels)
