"""Code versions from source: a hash of the project source that a function's computation
can run, so that it changes when that code changes and only then.

``code_version_of(tree, module, function)`` hashes:

- the function itself, from its ``def`` line (its decorators are wiring, left out);
- in the *shell* packages (``SourceTree.by_name``, e.g. the Dagster shell, where one module
  holds several assets), the module-level definitions it names, followed name by name,
  across shell modules too (``md.crops_metadata`` follows ``crops_metadata`` only);
- every other project module it names, whole, with every project module that one imports
  (anywhere in the file, lazy imports included, and modules named in strings such as
  ``"vitcow_assets.segmenters.motion:load"``), transitively, and the ``__init__`` of each
  package they sit in (which runs when they are imported).

Modules in ``SourceTree.provenance`` are left out (the release version and the commit: they
say which code wrote an output, in its data, and would otherwise change every version on
every commit). Source is hashed without comments, docstrings, blank lines or trailing
spaces, so a reworded docstring changes nothing; any other edit counts. The hash is over
module and definition names with their text, sorted: no path, no hash seed, no dict order,
no Python-version-dependent dump enters it, so the same source gives the same version in
any process, folder or machine. Files are only read (the modules are not imported).

Outside the project (third-party libraries) nothing is hashed: their versions are pinned
by ``constraints.txt``.
"""

import ast
import dataclasses
import functools
import hashlib
import io
import re
import tokenize
from pathlib import Path

#: hex digits kept of the sha256
VERSION_DIGITS = 16
_MODULE_STRING = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::([A-Za-z_]\w*))?$")


@dataclasses.dataclass(frozen=True)
class SourceTree:
    """A package's source: its import name, the folder holding it, the packages followed by
    name (else by whole module) and the modules left out as provenance."""

    package: str
    root: Path
    by_name: tuple[str, ...] = ()
    provenance: tuple[str, ...] = ()

    def path_of(self, module: str) -> Path | None:
        """The file of ``module`` (a package's ``__init__.py``), or None outside the tree."""
        parts = module.split(".")
        if parts[0] != self.package:
            return None
        base = self.root.joinpath(*parts[1:])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
        return None

    def named_by_name(self, module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in self.by_name)

    def left_out(self, module: str) -> bool:
        return module in self.provenance


_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstrings(tree: ast.AST) -> list[ast.Expr]:
    found, stack = [], [tree]
    while stack:  # scopes only: a docstring opens a module, class or function body
        node = stack.pop()
        body = getattr(node, "body", None)
        if isinstance(node, _SCOPES) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.append(first)
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(n for n in getattr(node, field, None) or [] if isinstance(n, ast.AST))
    return found


def normalised_source(text: str) -> str:
    """``text`` without comments, docstrings, blank lines and trailing spaces; line endings LF."""
    return "\n".join(line for _, line in _normalised_lines(text.replace("\r\n", "\n"), ast.parse(text)))


def _normalised_lines(text: str, tree: ast.AST) -> list[tuple[int, str]]:
    """(line number from 1, line) of ``normalised_source(text)``; ``tree``: ``text`` parsed."""
    lines = text.split("\n")
    blank: list[tuple[int, int, int, int]] = []  # (start row, start col, end row, end col), rows from 1, cols in characters
    if "#" in text:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                blank.append((*token.start, *token.end))
    for first in _docstrings(tree):
        blank.append((first.lineno, _chars(lines, first.lineno, first.col_offset), first.end_lineno, _chars(lines, first.end_lineno, first.end_col_offset)))
    for start_row, start_col, end_row, end_col in sorted(blank, reverse=True):
        head, tail = lines[start_row - 1][:start_col], lines[end_row - 1][end_col:]
        lines[start_row - 1:end_row] = [head + tail] + [""] * (end_row - start_row)
    return [(n, line.rstrip()) for n, line in enumerate(lines, start=1) if line.strip()]


def _chars(lines: list[str], row: int, byte_col: int) -> int:
    """A column from ``ast`` (UTF-8 bytes) as characters."""
    return len(lines[row - 1].encode()[:byte_col].decode())


@dataclasses.dataclass(frozen=True)
class _Ref:
    """What an imported name is: a module (``name`` None) or a name defined in one."""

    module: str
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class _Module:
    text: str
    tree: ast.Module
    #: module-level name -> the statements that bind it
    definitions: dict[str, tuple[ast.stmt, ...]]
    #: module-level name -> what its import binds
    imports: dict[str, _Ref]
    #: project modules this one imports or names anywhere (sorted)
    uses: tuple[str, ...]
    #: ``normalised_source(text)`` line by line, with each line's number in ``text``
    lines: tuple[tuple[int, str], ...]

    @property
    def normalised(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def segment(self, first: int, last: int) -> str:
        """The normalised lines from ``first`` to ``last`` (numbers in ``text``)."""
        return "\n".join(line for n, line in self.lines if first <= n <= last)


def _resolve_from(tree: SourceTree, module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if tree.path_of(module) and tree.path_of(module).name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _import_refs(tree: SourceTree, module: str, node: ast.stmt) -> dict[str, _Ref]:
    """Local name -> target, for one import statement (project targets only)."""
    refs = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            # ``import a.b`` binds ``a`` but runs ``a.b``: either way the name stands for ``a.b``
            if tree.path_of(alias.name):
                refs[alias.asname or alias.name.split(".")[0]] = _Ref(alias.name)
    elif isinstance(node, ast.ImportFrom):
        source = _resolve_from(tree, module, node)
        if tree.path_of(source):
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                refs[alias.asname or alias.name] = _Ref(submodule) if tree.path_of(submodule) else _Ref(source, alias.name)
    return refs


def _string_refs(tree: SourceTree, node: ast.AST) -> list[_Ref]:
    """Project modules (and names) written as strings, e.g. ``"pkg.module:attr"``."""
    refs = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            match = _MODULE_STRING.match(sub.value)
            if match and tree.path_of(match.group(1)):
                refs.append(_Ref(match.group(1), match.group(2)))
    return refs


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _read(tree: SourceTree, module: str) -> str:
    return tree.path_of(module).read_bytes().decode("utf-8").replace("\r\n", "\n")


@functools.lru_cache(maxsize=512)
def _parse(tree: SourceTree, module: str, text: str) -> _Module:
    """``module`` parsed (cached by its text: an edited file is parsed again)."""
    parsed = ast.parse(text)
    definitions: dict[str, list] = {}
    imports: dict[str, _Ref] = {}
    for node in parsed.body:
        for name in _bound_names(node):
            definitions.setdefault(name, []).append(node)
        imports.update(_import_refs(tree, module, node))
    uses = set()
    for node in ast.walk(parsed):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            uses.update(ref.module for ref in _import_refs(tree, module, node).values())
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            uses.update(ref.module for ref in _string_refs(tree, node))
    lines = tuple(_normalised_lines(text, parsed))
    return _Module(text, parsed, {k: tuple(v) for k, v in definitions.items()}, imports, tuple(sorted(uses - {module})), lines)


def _segment(parsed: _Module, node: ast.stmt, with_decorators: bool) -> str:
    first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno]) if with_decorators else node.lineno
    return parsed.segment(first, node.end_lineno)


def _names_used(node: ast.AST, skip_decorators: bool) -> dict[str, set[str] | None]:
    """Name -> the attributes taken of it (None where the name is used bare)."""
    parts = [node]
    if skip_decorators and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        parts = [node.args, *node.body] + ([node.returns] if node.returns else [])
    used: dict[str, set[str] | None] = {}
    for part in parts:
        attributed = set()
        for sub in ast.walk(part):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                attributed.add(id(sub.value))
                if used.get(sub.value.id, set()) is not None:
                    used.setdefault(sub.value.id, set()).add(sub.attr)
        for sub in ast.walk(part):
            if isinstance(sub, ast.Name) and id(sub) not in attributed:
                used[sub.id] = None
    return used


class _Closure:
    """The source entries (name -> normalised text) a computation can run."""

    def __init__(self, tree: SourceTree) -> None:
        self.tree = tree
        self.entries: dict[str, str] = {}
        self._texts: dict[str, str] = {}

    def parsed(self, module: str) -> _Module:
        """``module`` as it is on disk now (each file read once per closure)."""
        if module not in self._texts:
            self._texts[module] = _read(self.tree, module)
        return _parse(self.tree, module, self._texts[module])

    def module(self, module: str) -> None:
        key = f"module {module}"
        if key in self.entries or self.tree.left_out(module) or self.tree.path_of(module) is None:
            return
        parsed = self.parsed(module)
        self.entries[key] = parsed.normalised
        parts = module.split(".")
        for n in range(1, len(parts)):
            self.module(".".join(parts[:n]))
        for used in parsed.uses:
            self.module(used)

    def ref(self, ref: _Ref, attrs: set[str] | None = None) -> None:
        if not self.tree.named_by_name(ref.module) or self.tree.left_out(ref.module):
            self.module(ref.module)
        elif ref.name is not None:
            self.name(ref.module, ref.name)
        elif attrs:
            for attr in sorted(attrs):
                self.name(ref.module, attr)
        else:
            self.module(ref.module)

    def name(self, module: str, name: str, root: bool = False) -> None:
        key = f"definition {module}:{name}"
        if key in self.entries:
            return
        parsed = self.parsed(module)
        if name in parsed.imports:
            self.ref(parsed.imports[name])
            return
        nodes = parsed.definitions.get(name)
        if not nodes:
            # not defined here (a submodule, or a name the package lacks): the whole module
            return self.module(f"{module}.{name}") if self.tree.path_of(f"{module}.{name}") else self.module(module)
        self.entries[key] = "\n".join(_segment(parsed, n, with_decorators=not root) for n in nodes)
        for node in nodes:
            self._follow(module, parsed, node, skip_decorators=root)

    def _follow(self, module: str, parsed: _Module, node: ast.stmt, skip_decorators: bool) -> None:
        for name, attrs in sorted(_names_used(node, skip_decorators).items(), key=lambda item: item[0]):
            if name in parsed.imports:
                self.ref(parsed.imports[name], attrs)
            elif name in parsed.definitions:
                self.name(module, name)
        for sub in ast.walk(node):  # imports inside the definition (lazy imports)
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                for _, ref in sorted(_import_refs(self.tree, module, sub).items()):
                    self.ref(ref)
        for ref in _string_refs(self.tree, node):
            self.ref(ref)


def code_version_of(tree: SourceTree, module: str, function: str) -> str:
    """The code version of ``module.function``'s computation (see the module docstring)."""
    if tree.path_of(module) is None:
        raise ValueError(f"{module} is not a module of {tree.package} under {tree.root}")
    closure = _Closure(tree)
    closure.name(module, function, root=True)
    if f"definition {module}:{function}" not in closure.entries:
        raise ValueError(f"{module} defines no {function}")
    return version_of_entries(closure.entries)


def version_of_entries(entries: dict[str, str]) -> str:
    """The hash of named source texts, whatever order they were gathered in."""
    digest = hashlib.sha256()
    for key in sorted(entries):
        digest.update(f"{key}\n{hashlib.sha256(entries[key].encode()).hexdigest()}\n".encode())
    return digest.hexdigest()[:VERSION_DIGITS]


def closure_of(tree: SourceTree, module: str, function: str) -> list[str]:
    """What ``code_version_of`` hashes for ``module.function``: entry names, sorted (to
    explain a version, e.g. which modules an asset's code version covers)."""
    closure = _Closure(tree)
    closure.name(module, function, root=True)
    return sorted(closure.entries)
