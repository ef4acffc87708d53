"""The reference sources the evidence quotes come from, and the verbatim check.

A copy of the five reference documents ships in `risk_rules/data/sources/` so that every quote can be
checked whenever rules or reference data load, not only where the original folder happens to be
present; a test keeps the copy identical to the originals.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

_SPACE = re.compile(r"\s+")


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space: quotes are verbatim up to whitespace."""
    return _SPACE.sub(" ", text).strip()


def bundled_sources_dir() -> Path:
    return Path(str(resources.files("risk_rules") / "data" / "sources"))


@lru_cache(maxsize=4)
def source_texts(directory: Path | None = None) -> dict[str, str]:
    """Source id (file name without .txt) to whitespace-normalised text."""
    folder = directory or bundled_sources_dir()
    return {p.stem: normalise_whitespace(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.txt"))}


def quote_problem(source: str, quote: str, directory: Path | None = None) -> str | None:
    """None when `quote` appears verbatim (up to whitespace) in `source`; otherwise what is wrong."""
    texts = source_texts(directory)
    if source not in texts:
        return f"unknown source '{source}' (known: {', '.join(sorted(texts))})"
    if not quote or not quote.strip():
        return f"empty quote for source '{source}'"
    if normalise_whitespace(quote) not in texts[source]:
        return f"quote not found verbatim in '{source}': \"{quote[:80]}…\""
    return None
