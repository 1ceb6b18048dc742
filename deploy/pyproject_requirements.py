"""Print the requirements of a pyproject.toml project and of the named extras, one a line.

Used by deploy/Dockerfile to install the project's dependencies in a layer of their own, before
the code is copied in (so editing the code does not reinstall them). Standard library only; it
reads the file it is given and writes to stdout, nothing else.

    python pyproject_requirements.py pyproject.toml [EXTRA ...]
"""

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: dict, extras: list[str]) -> list[str]:
    """The project's dependencies followed by those of each extra, in order, without repeats."""
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise ValueError(f"unknown extra(s) {', '.join(unknown)}; the project has {', '.join(sorted(optional))}")
    found = list(project.get("dependencies", []))
    for extra in extras:
        found.extend(optional[extra])
    return list(dict.fromkeys(found))


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: pyproject_requirements.py PYPROJECT [EXTRA ...]", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        lines = requirements(tomllib.loads(path.read_text()), argv[1:])
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
