"""The review page's choices file, read for `twins export --choices`: streamed and bounded, and bound to the data.

The page (stages/review.py) writes a CSV with a row per decided card: index, path, ..., choice, new_label, and the
data's fingerprint in a `dataset` column. Rows are checked one by one by stages.export.apply_choices; this module
reads the file: its header, its `dataset` column against the decoded data, and no more rows than samples.
"""

from __future__ import annotations

import csv

from stages.decode import Dataset
from stages.errors import InputError

MAX_ROW_CHARS = 2**20  # a row of the page's CSV is a few hundred characters; past this it is no choices file


class BoundedLines:
    """The lines of an open text file for csv.reader, refusing a row (the lines read since `row_done`) longer
    than MAX_ROW_CHARS: a file of one enormous line, or a quoted field spanning many, is never held whole."""

    def __init__(self, f, source: str):
        self.f, self.source, self.chars = f, source, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.f.readline(MAX_ROW_CHARS + 1)
        if not line:
            raise StopIteration
        self.chars += len(line)
        if self.chars > MAX_ROW_CHARS:
            raise InputError(
                self.source, f"holds a row longer than {MAX_ROW_CHARS:,} characters: not the review page's CSV"
            )
        return line

    def row_done(self) -> None:
        self.chars = 0


def read_choices(path: str, data: Dataset, decoded: str = "the decoded data") -> list[dict[str, str]]:
    """The rows of the choices CSV at `path`, read for `data` (decoded from `decoded`): the header must name index
    and choice; where it has a `dataset` column, every row's must be data's fingerprint (the page it came from
    showed these data); there must be at least one row and no more than there are samples (a file of millions
    of rows is refused at row N + 1, never read whole). A spreadsheet's byte order mark is allowed."""
    n, fingerprint = len(data.labels), data.fingerprint
    rows: list[dict[str, str]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
            lines = BoundedLines(f, path)
            reader = csv.DictReader(lines)
            header = reader.fieldnames or []
            missing = [column for column in ("index", "choice") if column not in header]
            if missing:
                raise InputError(
                    path,
                    "is empty" if not header else f"has no {' or '.join(missing)} column: not the review page's CSV",
                )
            lines.row_done()
            for row in reader:
                lines.row_done()
                if len(rows) == n:
                    raise InputError(path, f"holds more than {n} rows: a row per sample of these data at most")
                stamp = row.get("dataset", fingerprint)
                if stamp != fingerprint:
                    raise InputError(
                        path,
                        f"row {len(rows) + 2}: was made on the review page of other data ({stamp!r}), not of "
                        f"{decoded} ({fingerprint}): review this run's page (results/review.html) again",
                    )
                rows.append(row)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, csv.Error) as exc:
        raise InputError(path, f"cannot be read as the review page's CSV ({exc})") from None
    if not rows:
        raise InputError(path, "holds no choices (a header alone): nothing to apply")
    return rows
