"""CSV as the tool writes it and reads its own back, names treated as data (docs: "Reliability").

Every CSV the tool writes (samples.csv, issues.csv, changes.csv, an export's manifest.csv, the report's tables) goes
through csv_text, and every name or path in it through cell; the tool's readers (a manifest, the review page's
choices) take a cell back through plain_cell.
"""

from __future__ import annotations

import csv
import io
import re

FORMULA = re.compile(r"'*[=+\-@\t\r]")  # a spreadsheet runs a cell starting with these as a formula (OWASP)
NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")  # what cell made of one: a leading ' before them


class _LineEnds:
    """What csv.writer writes into: each row's \r\n terminator made \n. Written with \r\n, a \r inside a field is
    quoted (Python's writer quotes \r and \n only where its line terminator holds them)."""

    def __init__(self, out: io.StringIO):
        self.out = out

    def write(self, line: str) -> None:
        self.out.write(line[:-2] + "\n")


def csv_text(rows) -> str:
    """rows (the header first) as CSV text, one line per row ending in \n, any field holding a \r or \n quoted, so
    a name with a carriage return reads back as one field of one row."""
    out = io.StringIO()
    csv.writer(_LineEnds(out), lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def cell(text: str) -> str:
    """A name or path for a CSV a spreadsheet may open: where it starts like a formula (=, +, -, @, tab, CR; OWASP,
    "CSV Injection") a leading ' makes the spreadsheet show it as text; so also where it already starts with ' and
    then such a character, so that plain_cell gives back exactly what was written, whatever the name."""
    return "'" + text if FORMULA.match(text) else text


def plain_cell(text: str) -> str:
    """The name cell wrote as `text` (a cell without cell's leading ' is returned as it is)."""
    return text[1:] if NEUTRALISED.match(text) else text
