import pytest

from vitcow_assets_tests.evaluation.synthetic_site import make_site


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The synthetic evaluation site (``synthetic_site.make_site``), shared by the module's tests."""
    return make_site(tmp_path_factory.mktemp("evalhome"))
