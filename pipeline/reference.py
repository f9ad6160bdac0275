"""The docs pages made from the code, never written by hand: the command line (each command's --help as click and
argparse format it), the parameters (params.params_reference) and the benchmarks (BENCHMARKS.md as it is).

mkdocs.yml names this file as a hook: `mkdocs build` adds the pages as it starts, so nothing generated is committed
or goes stale. tests/test_docs.py reads the same pages to check every citation from the code to the docs
(docs: "Contributing: Citing the docs")."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WIDTH = 110  # help text is wrapped to this many columns, whatever the terminal that builds the docs


def help_block(title: str, text: str) -> list[str]:
    return [f"## {title}", "", "```text", text.rstrip("\n"), "```", ""]


def graded_help() -> str:
    """hw02.py --help, as argparse prints it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hw02_help", REPO / "hw02.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, columns = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # argparse wraps to the terminal's width
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.parse_args(["--help"])
    finally:
        if columns is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().replace("usage: hw02_help", "usage: hw02.py")


def cli_reference() -> str:
    """The command line reference (Markdown): `twins --help`, each `twins` command's, and hw02.py's."""
    import click

    from pipeline.cli import main
    from pipeline.registry import STAGES

    root = click.Context(main, info_name="twins", terminal_width=WIDTH, max_content_width=WIDTH)
    lines = [
        "# Command line",
        "",
        "Generated from the commands' own help (`twins COMMAND --help`, `python3 hw02.py --help`) when the docs are "
        "built. A stage's parameters are listed under its command; [Parameters](parameters.md) has them as tables.",
        "",
        *help_block("twins", main.get_help(root)),
    ]
    stages = [stage.name for stage in STAGES]  # the stages in their order, then the other commands
    for name in stages + [name for name in main.list_commands(root) if name not in stages]:
        command = main.get_command(root, name)
        context = click.Context(command, info_name=name, parent=root, terminal_width=WIDTH, max_content_width=WIDTH)
        lines += help_block(f"twins {name}", command.get_help(context))
    return "\n".join(lines + help_block("hw02.py", graded_help()))


def benchmarks_page() -> str:
    """BENCHMARKS.md as it is, its links to docs/ made relative to the docs folder."""
    return (REPO / "BENCHMARKS.md").read_text(encoding="utf-8").replace("](docs/", "](")


def generated_pages() -> dict[str, str]:
    """Each generated page's Markdown, by its path in the docs site."""
    from pipeline.params import params_reference

    return {
        "reference/cli.md": cli_reference(),
        "reference/parameters.md": params_reference(),
        "benchmarks.md": benchmarks_page(),
    }


def on_files(files, config):
    """mkdocs hook: the generated pages join the site's files (mkdocs 1.6+: File.generated)."""
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files


def field_comments(lines: list[str], lineno: int) -> str:
    """The comments that document the field on line `lineno` (1-based) of a source: the comment lines right above
    it, its own trailing comment, and the comment lines below it indented as that comment's continuation
    (`#` then two or more spaces), as this code base writes them."""
    import tokenize

    def comment(line: str) -> tuple[str, bool]:
        """(the comment on `line`, whether the line holds nothing else)."""
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            return "", False
        found = [t.string for t in tokens if t.type == tokenize.COMMENT]
        alone = all(t.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER) for t in tokens)
        return (found[0][1:] if found else ""), alone

    above, row = [], lineno - 2
    while row >= 0 and (text := comment(lines[row]))[1] and text[0] and not text[0].startswith("  "):
        above.insert(0, text[0].strip())
        row -= 1
    own, _ = comment(lines[lineno - 1])
    below, row = [], lineno
    while own and row < len(lines) and (text := comment(lines[row]))[1] and text[0].startswith("  "):
        below.append(text[0].strip())
        row += 1
    return " ".join(part for part in (*above, own.strip(), *below) if part)


try:  # the docs extra: mkdocstrings reads the API through griffe
    from griffe import Docstring, Extension
except ImportError:  # without it, only the page generators above are used (tests/test_docs.py)
    Extension = object


class FieldComments(Extension):
    """griffe extension (mkdocs.yml): a field without a docstring is documented by its comments (field_comments),
    so the Python API page shows what each field of Issues, Decisions or TrainResult holds."""

    def on_attribute_instance(self, *, attr, **kwargs) -> None:
        if attr.docstring is not None or attr.lineno is None or attr.filepath is None:
            return
        text = field_comments(Path(attr.filepath).read_text(encoding="utf-8").splitlines(), attr.lineno)
        if text:
            attr.docstring = Docstring(text, lineno=attr.lineno, parent=attr)
