"""Command-line arguments as people type them: hw02.py and `twins` both read theirs through normalize_dashes."""

from __future__ import annotations

DASHES = ("\u2013", "\u2014", "\u2212")  # en dash, em dash, minus: what a PDF makes of "--"


def normalize_dashes(argv: list[str]) -> list[str]:
    """'–data' or '—data' (pasted from a PDF) mean '--data'."""
    out = []
    for arg in argv:
        stripped = arg.lstrip("".join(DASHES) + "-")
        if arg[:1] in DASHES and stripped:
            arg = "--" + stripped
        out.append(arg)
    return out
