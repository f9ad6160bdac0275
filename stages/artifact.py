"""A stage's result type is also its artifact's format: the arrays it is saved as, and the checks on load.

Each result class lists its arrays in FIELDS (name -> Field) and inherits to_arrays/from_arrays; pipeline/artifacts.py
does the file reading and writing. A stage that reads an artifact gets the result object back, checked.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np

from stages.errors import InputError


class Field(NamedTuple):
    kinds: str  # numpy dtype kinds accepted ("iu": any integer)
    ndim: int  # 0 for a scalar
    per_sample: bool = False  # one row per sample: every such array must have the same length


class Artifact:
    STAGE: ClassVar[str]  # the stage (and `twins` command) that writes it
    FIELDS: ClassVar[dict[str, Field]]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self.FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str, n: int | None = None):
        """The result saved as `arrays`, after check_arrays; 0-d arrays come back as Python scalars."""
        check_arrays(arrays, cls.FIELDS, source, cls.STAGE, n)
        return cls(**{name: arrays[name].item() if arrays[name].ndim == 0 else arrays[name] for name in cls.FIELDS})


def check_arrays(
    arrays: dict[str, np.ndarray], fields: dict[str, Field], source: str, stage: str, n: int | None = None
) -> None:
    """InputError naming `source` and the command that rewrites it, unless every field is there with its dtype kind
    and dimensions, and every per-sample array has n rows (or, without n, as many as the first)."""
    again = f"run 'twins {stage}' again"
    for name, (kinds, ndim, per_sample) in fields.items():
        if name not in arrays:
            raise InputError(source, f"holds no array '{name}' ({again})")
        array = arrays[name]
        if array.dtype.kind not in kinds or array.ndim != ndim:
            raise InputError(
                source,
                f"'{name}' is {array.dtype} with {array.ndim} dimensions, not what 'twins {stage}' writes ({again})",
            )
        if per_sample:
            n = len(array) if n is None else n
            if len(array) != n:
                raise InputError(source, f"'{name}' has {len(array)} rows for {n} samples ({again})")
