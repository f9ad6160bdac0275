"""Read one stage's typed parameters from params.yaml (plus command-line overrides), and write params.yaml and the
parameter reference from the declarations (stages/params.py).

Each stage owns a frozen dataclass of its parameters, declared once with default, help and range; params.yaml is
made from those defaults (`twins params --yaml`), so hw02.py (which never reads it) and `dvc repro` run the same
configuration.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pipeline.registry import SECTIONS
from stages.errors import InputError
from stages.params import declared

P = TypeVar("P")


def _coerce(name: str, value: Any, annotation: Any, source: str) -> Any:
    """Check one value against a field's annotation; ints pass as floats, None only where Optional."""
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    if value is None:
        if type(None) in options:
            return None
        raise InputError(source, f"{name} must not be empty")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise InputError(source, f"{name} = {value} is not a finite number")
            return float(value)
        if option is str and isinstance(value, str):
            return value
    wanted = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise InputError(source, f"{name} = {value!r} is not a {wanted}")


def build_params(cls: type[P], values: dict[str, Any], source: str, section: str) -> P:
    """Make `cls` from a mapping, refusing unknown keys and values of the wrong type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in values if key not in fields)  # YAML keys may be numbers or null
    if unknown:
        raise InputError(
            source,
            f"unknown parameter {section}.{unknown[0]}{did_you_mean(unknown[0], fields)} (known: {', '.join(fields)})",
        )
    hints = typing.get_type_hints(cls)
    checked = {key: _coerce(f"{section}.{key}", value, hints[key], source) for key, value in values.items()}
    try:
        return cls(**checked)
    except ValueError as exc:  # a stage's own range checks in __post_init__
        raise InputError(source, f"{section}: {exc}") from None


def did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


MAX_YAML_DEPTH = 20  # nesting levels a YAML document may have (params.yaml needs 2); deeper is refused


def strict_yaml(text: str) -> Any:
    """`text` as plain data (yaml.safe_load's types), refusing what params.yaml never needs and an attacker or a
    slip would use: anchors and aliases (`&a`, `*a`: a 2 KB "billion laughs" file expands to gigabytes), a key twice
    in one mapping (a second `train:` section would silently replace the first) and nesting past MAX_YAML_DEPTH
    levels (PyYAML composes recursively: a deep `[[[...]]]` is a RecursionError). Raises yaml.YAMLError, with a
    `problem` saying what and where."""
    import yaml
    from yaml.composer import ComposerError
    from yaml.constructor import ConstructorError

    class Strict(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ComposerError(problem=f"anchors and aliases (& and *) are not allowed{at(event)}")
            self.depth += 1
            try:
                if self.depth > MAX_YAML_DEPTH:
                    raise ComposerError(problem=f"nested more than {MAX_YAML_DEPTH} levels deep{at(event)}")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    twice = key in seen
                except TypeError:  # an unhashable key: safe_load's own error follows
                    continue
                if twice:
                    raise ConstructorError(problem=f"key {key!r} appears twice in one mapping{at(key_node)}")
                seen.add(key)
            return super().construct_mapping(node, deep)

    def at(item) -> str:
        mark = getattr(item, "start_mark", None)
        return f", line {mark.line + 1}" if mark is not None else ""

    loader = Strict(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_value(text: str, source: str) -> Any:
    """`text` as YAML (empty: None), or an InputError naming `source`: params.yaml and -S values are read alike,
    by strict_yaml."""
    import yaml

    try:
        return strict_yaml(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, f"not valid YAML ({problem})") from None


DEFAULT_FILE = Path("params.yaml")


def read_document(path: Path | None) -> dict[str, Any]:
    """params.yaml as a mapping of sections, every section checked whole: a misspelt section or parameter, a value
    of the wrong type or out of range, anywhere in the file, stops every stage before it touches its output.
    path None: params.yaml in the working folder, all defaults where there is none. A file named that cannot be
    read as UTF-8 text (missing, a folder, no permission) is an InputError naming it."""
    if path is None:
        if not DEFAULT_FILE.exists():
            return {}
        path = DEFAULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or str(exc)
        raise InputError(str(path), f"cannot be read ({why})") from None
    document = yaml_value(text, str(path)) or {}
    if not isinstance(document, dict):
        raise InputError(str(path), "must be a mapping of stage names to parameters")
    build_sections(document, SECTIONS, str(path))
    return document


def build_sections(document: dict[str, Any], sections: dict[str, type], source: str) -> dict[str, Any]:
    """Each section's dataclass built from the mapping of sections to parameters (defaults where a section is
    missing); an unknown section (with the nearest known name) or one that is not a mapping is an InputError."""
    for section, values in document.items():
        if section not in sections:
            raise InputError(
                source,
                f"unknown section {section!r}{did_you_mean(str(section), sections)} (known: {', '.join(sections)})",
            )
        if values is not None and not isinstance(values, dict):
            raise InputError(source, f"{section} must be a mapping of parameters, not {values!r}")
    return {
        section: build_params(cls, dict(document.get(section) or {}), source, section)
        for section, cls in sections.items()
    }


def load_params(
    cls: type[P],
    section: str,
    path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    sources: dict[str, str] | None = None,
) -> P:
    """`cls` built from the `section` of the YAML file at `path` (None: params.yaml where there is one; the whole
    file is checked), then with each override in turn (None is null), so an override that breaks a rule is blamed
    on itself: sources[key] says where it came from (default section.key), e.g. '-S n_models=0'."""
    path = None if path is None else Path(path)
    values = dict(read_document(path).get(section) or {})
    params = build_params(cls, values, str(path or DEFAULT_FILE), section)
    for key, value in (overrides or {}).items():
        values[key] = value
        params = build_params(cls, values, (sources or {}).get(key, f"{section}.{key}"), section)
    return params


def as_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)


def yaml_scalar(value: Any) -> str:
    """A default as params.yaml writes it (null, true, a number, or a plain string)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def params_yaml() -> str:
    """params.yaml: every section's parameters at their defaults, each under its help as a comment."""
    import textwrap

    lines = [
        "# Every stage's parameters at their defaults, each stage in its own section. Written by `twins params --yaml`",
        "# from the declarations in stages/ (a test keeps the two equal); edit values, or override one with -S.",
    ]
    for section, cls in SECTIONS.items():
        lines += ["", f"{section}:"]
        for p in declared(cls):
            lines += textwrap.wrap(p.help, 116, initial_indent="  # ", subsequent_indent="  # ")
            lines.append(f"  {p.name}: {yaml_scalar(p.default)}")
    return "\n".join(lines) + "\n"


def params_reference() -> str:
    """The parameter reference (Markdown): a table per section of each parameter's default, values and help."""
    lines = ["# Parameters", "", "Generated by `twins params` from the declarations in `stages/`.", ""]
    for section, cls in SECTIONS.items():
        lines += [f"## {section}", "", "| parameter | default | allowed | what it does |", "|---|---|---|---|"]
        for p in declared(cls):
            cell = p.help.replace("|", "\\|")
            lines.append(f"| `{p.name}` | `{yaml_scalar(p.default)}` | {p.values()} | {cell} |")
        lines.append("")
    return "\n".join(lines)
