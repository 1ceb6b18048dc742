"""Code versions from source (``runtime.code_versions``), on a small package written here:
what counts as a change of a function's computation and what does not."""

import shutil
import textwrap
from pathlib import Path

import pytest

from vitcow_assets.runtime.code_versions import SourceTree, closure_of, code_version_of, normalised_source

FILES = {
    "__init__.py": '"""The package."""\n__version__ = "1.0"\n',
    "shell/__init__.py": '"""Wiring."""\n',
    "shell/tasks.py": '''
        """Two tasks in one shell module."""
        from pkg.shell import helpers as hp
        from pkg.work.cutting import cut
        from pkg import version

        LIMIT = 3


        def _prepare(x):
            return hp.clean(x)


        @decorator(unrelated=True)
        def first(x):
            """Cuts."""
            stamp = version.commit()
            return cut(_prepare(x), LIMIT)


        def second(x):
            from pkg.work.drawing import draw  # a lazy import
            return draw(x), "pkg.work.loaders:load"
    ''',
    "shell/helpers.py": '''
        """Helpers; only clean is used by the tasks."""
        def clean(x):
            return x


        def unused(x):
            return x * 2
    ''',
    "work/__init__.py": '"""Work."""\n',
    "work/cutting.py": '"""Cutting."""\nfrom pkg.work.common import frame\n\ndef cut(x, n):\n    return frame(x)[:n]\n',
    "work/drawing.py": '"""Drawing."""\nfrom pkg.work.common import frame\n\ndef draw(x):\n    return frame(x)\n',
    "work/common.py": '"""Shared."""\ndef frame(x):\n    return list(x)\n',
    "work/loaders.py": '"""Loaded by name."""\ndef load():\n    return 1\n',
    "version.py": '"""The commit (provenance)."""\ndef commit():\n    return "abc"\n',
}


def _write(root: Path) -> SourceTree:
    for name, text in FILES.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return SourceTree("pkg", root / "pkg", by_name=("pkg.shell",), provenance=("pkg", "pkg.version"))


def _versions(tree: SourceTree) -> dict[str, str]:
    return {f: code_version_of(tree, "pkg.shell.tasks", f) for f in ("first", "second")}


def _edit(tree: SourceTree, name: str, old: str, new: str) -> None:
    path = tree.root / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture()
def tree(tmp_path) -> SourceTree:
    return _write(tmp_path / "a")


def test_each_function_covers_what_it_runs_and_nothing_else(tree):
    first = closure_of(tree, "pkg.shell.tasks", "first")
    assert first == [
        "definition pkg.shell.helpers:clean", "definition pkg.shell.tasks:LIMIT", "definition pkg.shell.tasks:_prepare",
        "definition pkg.shell.tasks:first", "module pkg.work", "module pkg.work.common", "module pkg.work.cutting",
    ]
    second = closure_of(tree, "pkg.shell.tasks", "second")
    assert "module pkg.work.drawing" in second and "module pkg.work.loaders" in second and "module pkg.work.cutting" not in second


@pytest.mark.parametrize("name, old, new, changed", [
    ("work/cutting.py", "[:n]", "[: n + 1]", {"first"}),
    ("work/drawing.py", "return frame(x)", "return frame(x)[::-1]", {"second"}),
    ("work/common.py", "list(x)", "tuple(x)", {"first", "second"}),
    ("work/loaders.py", "return 1", "return 2", {"second"}),
    ("shell/tasks.py", "LIMIT = 3", "LIMIT = 4", {"first"}),
    ("shell/helpers.py", "return x\n", "return x.strip()\n", {"first"}),
])
def test_a_code_change_changes_the_functions_that_run_it(tree, name, old, new, changed):
    before = _versions(tree)
    _edit(tree, name, old, new)
    after = _versions(tree)
    assert {f for f in before if before[f] != after[f]} == changed


@pytest.mark.parametrize("name, old, new", [
    ("work/cutting.py", '"""Cutting."""', '"""Cutting, reworded\n\nover two paragraphs."""'),
    ("work/cutting.py", "return frame(x)[:n]", "return frame(x)[:n]  # the first n"),
    ("work/common.py", "def frame(x):\n", "\n\n# a comment\ndef frame(x):   \n"),
    ("shell/tasks.py", "@decorator(unrelated=True)", "@decorator(unrelated=False, group='other')"),
    ("shell/tasks.py", '"""Cuts."""', '"""Cuts, in more words (the asset\'s description)."""'),
    ("shell/helpers.py", "return x * 2", "return x * 3"),
    ("__init__.py", '"1.0"', '"2.0"'),
    ("version.py", 'return "abc"', 'return "def"'),
])
def test_docstrings_comments_wiring_unused_code_and_provenance_change_nothing(tree, name, old, new):
    before = _versions(tree)
    _edit(tree, name, old, new)
    assert _versions(tree) == before


def test_the_same_source_gives_the_same_version_in_any_folder_and_with_any_line_endings(tree, tmp_path):
    elsewhere = tmp_path / "somewhere" / "else"
    shutil.copytree(tree.root, elsewhere / "pkg")
    for path in (elsewhere / "pkg").rglob("*.py"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    moved = SourceTree("pkg", elsewhere / "pkg", tree.by_name, tree.provenance)
    assert _versions(moved) == _versions(tree)
    assert all(len(v) == 16 and int(v, 16) >= 0 for v in _versions(tree).values())
    assert _versions(tree)["first"] != _versions(tree)["second"]


def test_normalised_source_keeps_code_and_strings_and_drops_comments_and_docstrings():
    text = 'def f():\n    """Doc."""\n    s = "# not a comment"  # a comment\n\n    return s  \n\nclass C:\n    """Doc."""\n    é = "ü"  # ü\n'
    assert normalised_source(text) == 'def f():\n    s = "# not a comment"\n    return s\nclass C:\n    é = "ü"'


def test_a_function_or_module_outside_the_tree_is_refused(tree):
    with pytest.raises(ValueError, match="defines no missing"):
        code_version_of(tree, "pkg.shell.tasks", "missing")
    with pytest.raises(ValueError, match="not a module of pkg"):
        code_version_of(tree, "other.module", "first")
