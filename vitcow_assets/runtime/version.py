"""The code version written into every output: package version plus git commit when known
(from the checkout, or ``VITCOW_CODE_VERSION`` where there is none, as in the container
image, whose build records its commit there)."""

import functools
import os
import subprocess
from pathlib import Path

from vitcow_assets import __version__


CODE_VERSION_ENV = "VITCOW_CODE_VERSION"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    given = os.environ.get(CODE_VERSION_ENV, "").strip()
    if given and given != "unknown":
        return f"{__version__}+g{given[:12]}" if "+" not in given else given
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}" if commit else __version__
