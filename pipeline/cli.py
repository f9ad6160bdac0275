"""`twins`: run any one pipeline stage (the commands dvc.yaml runs), the whole pipeline, or make a test case.

Every stage reads its parameters from params.yaml (section named after the stage); `-S key=value` overrides one.
Bad input or bad parameters end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from pipeline import plant as planting
from pipeline import steps
from pipeline.argv import normalize_dashes
from pipeline.artifacts import all_or_nothing
from pipeline.params import load_params, params_reference, params_yaml, yaml_scalar, yaml_value
from pipeline.paths import PATHS, check_layout
from pipeline.registry import RUN, SECTIONS, STAGES, Stage
from pipeline.signals import interrupted, terminate_like_interrupt
from stages.aggregate import format_indices
from stages.decode import DecodeParams
from stages.decode_readers import kind_of
from stages.errors import InputError
from stages.export import ExportOptions
from stages.params import declared

PARAMS_HELP = "Parameters file; each stage reads its own section [default: params.yaml, where there is one]."
SET_HELP = "Override one parameter of this stage, e.g. -S n_models=8 (repeatable; values are YAML)."


NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click 8.2+: `twins` alone, answered with the help


class TwinsGroup(click.Group):
    """Turns InputError and usage errors (an unknown command or option, a bad option value) anywhere below into one
    line on stderr and exit code 2; a command's files are written all or none, and what it has for stdout (answer)
    is printed after them, so a closed or broken stdout costs no file and is one line and exit code 2 itself.
    Options typed with an en or em dash ('–images', pasted from a PDF) mean '--images', as in hw02.py. SIGTERM
    ends a command as Ctrl-C does (pipeline/signals.py), with exit code 143."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, normalize_dashes(args))
        except NO_ARGS:
            raise
        except click.UsageError as exc:
            usage_error(ctx, exc)

    def invoke(self, ctx: click.Context) -> Any:
        terminate_like_interrupt()
        try:
            with all_or_nothing():  # a command's files appear together or not at all
                result = super().invoke(ctx)
            for line in ctx.meta.get(ANSWER, []):
                if sys.stdout is None:
                    raise BrokenPipeError("stdout is closed")
                click.echo(line)
            return result
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:
            usage_error(ctx, exc)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (pipeline/signals.py)
            word, code = interrupted(exc)
            click.echo(f"{word}: nothing was written", err=True)
            ctx.exit(code)
        except BrokenPipeError as exc:
            with contextlib.suppress(OSError, ValueError, AttributeError):  # the interpreter flushes stdout at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            click.echo(f"error: stdout: could not be written ({exc.strerror or exc})", err=True)
            ctx.exit(2)


def usage_error(ctx: click.Context, exc: click.UsageError) -> None:
    """click's message as one line, `error: ...`, and exit code 2 (click adds the usage, a hint and a blank line)."""
    click.echo(f"error: {exc.format_message()}", err=True)
    ctx.exit(2)


ANSWER = "evil_twins.answer"


def answer(line: str) -> None:
    """A line for stdout, printed once the command's files are written (TwinsGroup)."""
    click.get_current_context().meta.setdefault(ANSWER, []).append(line)


def parse_overrides(pairs: tuple[str, ...], prefix: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """-S key=value pairs as values (YAML, as in params.yaml: an empty value is null) and where each came from, the
    pair as typed (`twins run` passes its pairs without their section, `prefix`)."""
    values, sources = {}, {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise InputError("-S", f"{pair!r} is not key=value")
        key = key.strip()
        sources[key] = f"-S {prefix}{pair}"
        values[key] = yaml_value(text, sources[key])
    return values, sources


def stage_params(
    cls, section: str, params_file: str | None, overrides: tuple[str, ...], prefix: str = "", **explicit: Any
):
    """A stage's parameters: its section of params_file, then the -S overrides, then the options given (None: not
    given); an error names the file, the -S pair or the option it comes from."""
    values, sources = parse_overrides(overrides, prefix)
    for key, value in explicit.items():
        if value is not None:
            values[key], sources[key] = value, f"--{key.replace('_', '-')}"
    return load_params(cls, section, params_file, values, sources)


def decode_params(
    params_file: str | None, overrides: tuple[str, ...], images: str | None, labels: str | None, prefix: str = ""
):
    """decode's parameters, --images and --labels over params.yaml's. idx images named on the command line without
    --labels are refused where decode.labels is still its default, the sample's labels: half of the sample's pair
    never labels other images (labels set in params.yaml may, and are taken)."""
    params = stage_params(DecodeParams, "decode", params_file, overrides, prefix, images=images, labels=labels)
    sample = DecodeParams()
    if (
        images
        and labels is None
        and kind_of(images) == "idx"
        and not same_file(images, sample.images)
        and same_file(params.labels, sample.labels)
    ):
        raise InputError(
            "--labels",
            f"not given: the idx images {images} need their labels' file (decode.labels "
            f"is still the sample's, {params.labels})",
        )
    return params


def same_file(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


params_option = click.option("--params", "params_file", help=PARAMS_HELP)
set_option = click.option("-S", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)


@click.group(cls=TwinsGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Find evil twins and other mislabelled samples in image classification data."""


PATH_HELP = {
    "decoded": "The decode stage's artifact (the data set).",
    "external": "The external stage's artifact (the evidence you brought, checked).",
    "groups": "The group stage's artifact (group id and distance per sample).",
    "groups_summary": "Group sizes, conflicting groups and the threshold used (JSON).",
    "oob": "The train stage's artifact (out-of-bag probabilities, votes, loss curves).",
    "decisions": "The aggregate stage's artifact (a decision per sample).",
    "results": "Folder for suspects.txt (the graded line), samples.csv, issues.csv, skipped.txt and the report.",
    "metrics": "Counts, threshold and seconds (a DVC metric).",
    "timings": "Folder for <stage>.json, each stage's wall-clock figures (DVC metrics, kept out of the artifacts).",
}


def path_options(*names: str, writes: bool = False):
    """--<name> options for the files a command reads or writes, defaulting to pipeline/paths.py's layout; the
    command receives them as one Paths, checked first (paths.check_layout; `writes`: it writes every one)."""

    def decorate(command):
        def with_paths(**kwargs):
            paths = replace(PATHS, **{name: kwargs.pop(name) for name in names})
            check_layout(paths, names, writes)
            return command(paths=paths, **kwargs)

        with_paths = functools.update_wrapper(with_paths, command)
        for name in reversed(names):
            with_paths = click.option(
                f"--{name.replace('_', '-')}",
                name,
                default=getattr(PATHS, name),
                show_default=True,
                help=PATH_HELP[name],
            )(with_paths)
        return with_paths

    return decorate


def declared_help(section: str, name: str, text: str | None = None) -> str:
    """An option's help for parameter section.name: its declared help (or `text`) and where it is set, by default."""
    p = next(p for p in declared(SECTIONS[section]) if p.name == name)
    return f"{text or p.help} [params: {section}.{name}, {yaml_scalar(p.default)}]"


def parameters_epilog(section: str) -> str:
    """The --help text's list of a section's parameters, from their declarations (stages/params.py)."""
    lines = [f"Parameters (params.yaml section '{section}'; -S NAME=VALUE overrides one):"]
    for p in declared(SECTIONS[section]):
        lines.append(f"{p.name} = {yaml_scalar(p.default)} ({p.values()}): {p.help}")
    return "\n\n".join(lines)


IMAGES_OPTION = click.option("--images", help=declared_help("decode", "images"))
LABELS_OPTION = click.option("--labels", help=declared_help("decode", "labels"))
EXTERNAL_OPTIONS = (
    click.option("--pred-probs", help=declared_help("external", "pred_probs")),
    click.option("--features", help=declared_help("external", "features")),
    click.option("--model", help=declared_help("external", "model")),
)
STAGE_OPTIONS = {"decode": (IMAGES_OPTION, LABELS_OPTION), "external": EXTERNAL_OPTIONS}  # beyond paths, -S


def stage_command(stage: Stage, *options):
    """`twins <stage>`: the files it reads and writes as options (path_options), --params, -S and `options`; it reads
    its section of parameters (options given over -S over params.yaml) and runs pipeline/steps.py's function of the
    stage's name on them."""

    def command(paths, params_file, overrides, **given):
        if stage.name == "decode":
            params = decode_params(params_file, overrides, given["images"], given["labels"])
        else:
            params = stage_params(stage.params, stage.name, params_file, overrides, **given)
        getattr(steps, stage.name)(params, paths)

    command = path_options(*stage.reads, *stage.writes)(params_option(set_option(command)))
    for option in reversed(options):
        command = option(command)
    return main.command(stage.name, help=stage.summary, epilog=parameters_epilog(stage.name))(command)


for _stage in STAGES:
    if _stage.name != "export":  # export's options are its own (below)
        stage_command(_stage, *STAGE_OPTIONS.get(_stage.name, ()))


def section_overrides(pairs: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """-S section.key=value pairs of `twins run`, as -S key=value pairs per section."""
    by_section: dict[str, list[str]] = {}
    for pair in pairs:
        section, dot, rest = pair.partition(".")
        if not dot or section not in RUN:
            raise InputError("-S", f"{pair!r} is not section.key=value with a section of {', '.join(RUN)}")
        by_section.setdefault(section, []).append(rest)
    return {section: tuple(by_section.get(section, ())) for section in RUN}


@main.command("run")
@IMAGES_OPTION
@LABELS_OPTION
@EXTERNAL_OPTIONS[0]
@EXTERNAL_OPTIONS[1]
@EXTERNAL_OPTIONS[2]
@path_options("decoded", "external", "groups", "oob", "decisions", "results", "metrics", writes=True)
@params_option
@click.option(
    "-S",
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one parameter, e.g. -S train.n_models=5 (repeatable; values are YAML).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each stage on stderr.")
def run_all(images, labels, pred_probs, features, model, paths, params_file, overrides, verbose):
    """Run every stage in one process (no DVC, no cache) and print the suspects' indices, as hw02.py does, but with
    params.yaml's parameters. Writes what the stages would: the artifacts, the results (suspects.txt, samples.csv,
    issues.csv, review.html and the figures) and metrics.json, so `twins report` and `twins export` work after it."""
    sets = section_overrides(overrides)
    brought = dict(pred_probs=pred_probs, features=features, model=model)
    params = {
        section: decode_params(params_file, sets[section], images, labels, "decode.")
        if section == "decode"
        else stage_params(
            SECTIONS[section],
            section,
            params_file,
            sets[section],
            f"{section}.",
            **(brought if section == "external" else {}),
        )
        for section in RUN
    }
    log = (
        (lambda message: click.echo(message, err=True))
        if verbose
        else (lambda message: click.echo(message, err=True) if message.startswith(("group:", "train:")) else None)
    )
    result = steps.run_all(params, paths, log=log)
    if result.decisions.note and not verbose:
        click.echo(f"note: {result.decisions.note}", err=True)
    click.echo(f"results in {paths.results}/ (open review.html to act on them)", err=True)
    answer(format_indices(result.decisions.flagged.nonzero()[0]))


@main.command()
@click.option("--yaml", "as_yaml", is_flag=True, help="Print params.yaml (every default, with its help) instead.")
def params(as_yaml):
    """Print every stage's parameters: default, values allowed and what each does (Markdown, as in the docs)."""
    answer((params_yaml() if as_yaml else params_reference()).rstrip("\n"))


@main.command(epilog=parameters_epilog("export"))
@click.option(
    "--out",
    "out",
    default=PATHS.export,
    show_default=True,
    type=click.Path(),
    help="A new (or empty) folder for the cleaned copy and changes.csv; the original is never written.",
)
@click.option(
    "--choices",
    type=click.Path(dir_okay=False),
    help="Apply a person's choices instead: the CSV the review page (results/review.html) downloads.",
)
@click.option("--relabel/--no-relabel", default=None, help=declared_help("export", "relabel"))
@click.option("--drop-outliers/--keep-outliers", default=None, help=declared_help("export", "drop_outliers"))
@click.option("--drop-odd/--keep-odd", default=None, help=declared_help("export", "drop_odd"))
@click.option("--label-unlabelled/--leave-unlabelled", default=None, help=declared_help("export", "label_unlabelled"))
@click.option(
    "--format",
    "form",
    type=click.Choice(["auto", "manifest", "npz", "idx"]),
    default="auto",
    show_default=True,
    help="auto: a manifest of the source files where there are files, an .npz for numpy data, else idx files.",
)
@click.option("--copy", is_flag=True, help="With a manifest: copy the kept files into OUT/files/<class>/.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@path_options("decoded", "decisions")
@params_option
@set_option
def export(
    out, choices, relabel, drop_outliers, drop_odd, label_unlabelled, form, copy, dry_run, paths, params_file, overrides
):
    """Write a cleaned copy of the data set: wrong labels relabelled as suggested, outliers and odd images left
    out (each switchable), or the review page's choices applied; changes.csv lists every change."""
    options = stage_params(
        ExportOptions,
        "export",
        params_file,
        overrides,
        relabel=relabel,
        drop_outliers=drop_outliers,
        drop_odd=drop_odd,
        label_unlabelled=label_unlabelled,
    )
    steps.export(out, options, choices=choices, form=form, copy=copy, dry_run=dry_run, paths=paths)


COUNT = click.IntRange(min=0)


@main.command()
@click.option(
    "--source",
    type=click.Choice(["mnist", "notmnist", "cifar20"]),
    default="mnist",
    show_default=True,
    help="Bundled clean data set to draw from (cifar20: 20 colour photos).",
)
@click.option("--n-clean", default=150, type=COUNT, show_default=True, help="Distinct clean samples.")
@click.option("--n-evil", default=15, type=COUNT, show_default=True, help="Evil twins: a copy with a different label.")
@click.option(
    "--n-two-evil", default=0, type=COUNT, show_default=True, help="Groups with two evil copies sharing a wrong label."
)
@click.option("--n-benign", default=0, type=COUNT, show_default=True, help="Copies with the same label.")
@click.option("--n-orphans", default=0, type=COUNT, show_default=True, help="Mislabelled samples with no twin.")
@click.option(
    "--perturbed",
    is_flag=True,
    help="Copies get noise (sigma <= 8), brightness/contrast (+-12%) and a one-pixel shift.",
)
@click.option("--seed", default=0, type=COUNT, show_default=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for images-idx3-ubyte.gz (idx4 for colour), labels-idx1-ubyte.gz and truth.txt.",
)
def plant(source, n_clean, n_evil, n_two_evil, n_benign, n_orphans, perturbed, seed, out_dir):
    """Make an evil-twin test case from a clean data set, with the truth alongside."""
    try:
        spec = planting.PlantSpec(
            n_clean=n_clean,
            n_evil=n_evil,
            n_two_evil=n_two_evil,
            n_benign=n_benign,
            n_orphans=n_orphans,
            seed=seed,
            **(planting.PERTURBED if perturbed else {}),
        )
        case = planting.plant(*planting.load_source(source), spec)
    except ValueError as exc:
        raise InputError("plant", str(exc)) from None
    planting.write_case(case, out_dir)
    click.echo(f"{len(case.labels)} samples, {len(case.truth)} with a wrong label -> {out_dir}", err=True)


if __name__ == "__main__":
    sys.exit(main())
