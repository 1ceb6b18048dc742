"""Each asset's Dagster code version: a hash of the project source its computation can run
(``runtime.code_versions``), so an asset turns stale in the UI when the code that computes
it changes, and a commit touching only docs, tests or other assets' code leaves it alone.

Use ``versioned_asset`` wherever ``dg.asset`` would go; it takes the same arguments, fills
in ``code_version`` and adds the package version and git commit that ran the step to each
materialization's metadata (``vitcow_version``, from ``runtime.version``): the commit is
provenance, kept in the metadata and the outputs, not a code version. Why this design:
``docs/architecture.md``.
"""

import functools
import inspect
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from vitcow_assets.runtime.code_versions import SourceTree, code_version_of
from vitcow_assets.runtime.version import code_version as running_version

#: the metadata entry naming the package version and commit that wrote a materialization
VERSION_METADATA = "vitcow_version"

#: this package's source: the Dagster shell (``defs``, several assets to a module) is followed
#: name by name, every other package module by module; the release version and the commit
#: are provenance, left out
SOURCE = SourceTree(
    package="vitcow_assets",
    root=Path(__file__).resolve().parents[1],
    by_name=("vitcow_assets.defs",),
    provenance=("vitcow_assets", "vitcow_assets.runtime.version"),
)


def computation_version(fn: Callable, tree: SourceTree = SOURCE) -> str:
    """The code version of the asset computed by ``fn`` (the undecorated function), from
    the source under ``tree`` (another checkout's, in tests)."""
    return code_version_of(tree, fn.__module__, fn.__name__)


def _stamped(item):
    """A ``MaterializeResult`` with ``VERSION_METADATA`` added; anything else as it is."""
    if not isinstance(item, dg.MaterializeResult):
        return item
    return dg.MaterializeResult(
        asset_key=item.asset_key, metadata={**(item.metadata or {}), VERSION_METADATA: running_version()},
        check_results=item.check_results, data_version=item.data_version, tags=item.tags, value=item.value,
    )


def _recording_version(fn: Callable) -> Callable:
    """``fn`` (same signature, for Dagster) whose results carry ``VERSION_METADATA``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generate(*args, **kwargs):
            for item in fn(*args, **kwargs):
                yield _stamped(item)

        return generate

    @functools.wraps(fn)
    def compute(*args, **kwargs):
        return _stamped(fn(*args, **kwargs))

    return compute


def versioned_asset(source_tree: SourceTree = SOURCE, **kwargs) -> Callable[[Callable], dg.AssetsDefinition]:
    """``dg.asset(**kwargs)`` with ``code_version`` the computation's version (from the
    source under ``source_tree``: this package's unless told), and the package version and
    commit in every materialization's metadata."""
    if "code_version" in kwargs:
        raise TypeError("versioned_asset derives code_version from the source; do not pass one")

    def decorate(fn: Callable) -> dg.AssetsDefinition:
        return dg.asset(code_version=computation_version(fn, source_tree), **kwargs)(_recording_version(fn))

    return decorate
