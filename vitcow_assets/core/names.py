"""Plain names: text made safe as one file-name component and a partition key.

Pure: strings in, strings out.
"""

import re
import unicodedata

MAX_CHARS = 80


def plain_name(text: str | None, max_chars: int = MAX_CHARS) -> str:
    """``text`` with accents folded, every run of characters other than letters, digits,
    ``.``, ``_`` and ``-`` made ``_``, no leading or trailing ``.``, ``_`` or ``-`` (so
    never ``.`` or ``..``), at most ``max_chars`` long; empty when nothing usable is left."""
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._-")[:max_chars].rstrip("._-")
