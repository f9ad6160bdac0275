"""`twins`: run any one pipeline stage (the commands dvc.yaml runs), the whole pipeline, or make a test case.

Every stage reads its parameters from params.yaml (section named after the stage); `-S key=value` overrides one.
Bad input or bad parameters end with one line on stderr and exit code 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from pipeline.errors import InputError
from pipeline.params import load_params

PARAMS_HELP = "Parameters file; each stage reads its own section."
SET_HELP = "Override one parameter of this stage, e.g. -S n_models=8 (repeatable; values are YAML)."


class TwinsGroup(click.Group):
    """Turns InputError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError("-S", f"{pair!r} is not key=value")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def stage_params(cls, section: str, params_file: str, overrides: tuple[str, ...], **explicit: Any):
    values = parse_overrides(overrides)
    values.update({k: v for k, v in explicit.items() if v is not None})
    return load_params(cls, section, params_file, values)


params_option = click.option("--params", "params_file", default="params.yaml", show_default=True,
                             help=PARAMS_HELP)
set_option = click.option("-S", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)


@click.group(cls=TwinsGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Find evil twins and other mislabelled samples in image classification data."""


@main.command()
@click.option("--images", help="idx3/idx4 image file, gzipped or raw [params: decode.images].")
@click.option("--labels", help="idx1 label file, gzipped or raw [params: decode.labels].")
@click.option("--out", default="artifacts/decoded.npz", show_default=True, help="Artifact to write.")
@params_option
@set_option
def decode(images, labels, out, params_file, overrides):
    """Read and check the idx files; write images, labels and source checksums to OUT.

    Checks the magic number and type byte, the header's dimensions against the payload, equal counts, at least
    one sample, and labels within 0..num_classes-1. Nothing is written when a check fails."""
    from stages import decode as stage

    params = stage_params(stage.DecodeParams, "decode", params_file, overrides, images=images, labels=labels)
    stage.run(params, out)


@main.command()
@click.option("--source", type=click.Choice(["mnist", "notmnist"]), default="mnist", show_default=True,
              help="Bundled clean data set to draw from.")
@click.option("--n-clean", default=150, show_default=True, help="Distinct clean samples.")
@click.option("--n-evil", default=15, show_default=True, help="Evil twins: a copy with a different label.")
@click.option("--n-two-evil", default=0, show_default=True, help="Groups with two evil copies sharing a wrong label.")
@click.option("--n-benign", default=0, show_default=True, help="Copies with the same label.")
@click.option("--n-orphans", default=0, show_default=True, help="Mislabelled samples with no twin.")
@click.option("--perturbed", is_flag=True, help="Copies get noise (sigma <= 8), brightness/contrast (+-12%%) "
                                                "and a one-pixel shift.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for images-idx3-ubyte.gz, labels-idx1-ubyte.gz and truth.txt.")
def plant(source, n_clean, n_evil, n_two_evil, n_benign, n_orphans, perturbed, seed, out_dir):
    """Make an evil-twin test case from a clean data set, with the truth alongside."""
    from pipeline import plant as planting

    try:
        spec = planting.PlantSpec(n_clean=n_clean, n_evil=n_evil, n_two_evil=n_two_evil, n_benign=n_benign,
                                  n_orphans=n_orphans, seed=seed, **(planting.PERTURBED if perturbed else {}))
        case = planting.plant(*planting.load_source(source), spec)
    except ValueError as exc:
        raise InputError("plant", str(exc)) from None
    planting.write_case(case, out_dir)
    click.echo(f"{len(case.labels)} samples, {len(case.truth)} with a wrong label -> {out_dir}", err=True)


if __name__ == "__main__":
    sys.exit(main())
