import pytest

from vitcow_assets.footage.layout import StorageRoot
from vitcow_assets_tests.evaluation.synthetic_site import KINDS, build_export, write_embeddings


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """A storage root whose default export folder holds the synthetic dataset, with one
    embeddings table per kind (partition keys ``separable``, ``random``, ``track``)."""
    root = StorageRoot(tmp_path_factory.mktemp("evalhome"))
    out = root.datasets.default_export
    built, catalog = build_export(out)
    shas = {kind: write_embeddings(root.embeddings_table(kind), catalog, built.splits.table, kind) for kind in KINDS}
    return {"root": root, "export": out, "built": built, "catalog": catalog, "checkpoints": shas}
