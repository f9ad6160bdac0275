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
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was written", err=True)
            ctx.exit(130)


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
@click.option("--timing", default="metrics/decode.json", show_default=True,
              help="Wall-clock figures (a DVC metric, kept out of the artifact).")
@params_option
@set_option
def decode(images, labels, out, timing, params_file, overrides):
    """Read and check the idx files; write images, labels and source checksums to OUT.

    Checks the magic number and type byte, the header's dimensions against the payload, equal counts, at least
    one sample, and labels within 0..num_classes-1. Nothing is written when a check fails."""
    from stages import decode as stage

    params = stage_params(stage.DecodeParams, "decode", params_file, overrides, images=images, labels=labels)
    stage.run(params, out, timing)


@main.command()
@click.option("--decoded", default="artifacts/decoded.npz", show_default=True, help="The decode stage's artifact.")
@click.option("--out", default="artifacts/groups.npz", show_default=True, help="Group id and distance per sample.")
@click.option("--summary", default="artifacts/groups.json", show_default=True,
              help="Group sizes, conflicting groups and the threshold used.")
@click.option("--timing", default="metrics/group.json", show_default=True,
              help="Wall-clock figures (a DVC metric, kept out of the artifact).")
@params_option
@set_option
def group(decoded, out, summary, timing, params_file, overrides):
    """Hash images into twin groups: exact copies and near-identical ones (noise, brightness, 1 px shift).

    Every sample gets a group id (singletons are groups of one) and its distance to the group's representative."""
    from stages import group as stage

    stage.run(stage_params(stage.GroupParams, "group", params_file, overrides), decoded, out, summary, timing)


@main.command()
@click.option("--decoded", default="artifacts/decoded.npz", show_default=True, help="The decode stage's artifact.")
@click.option("--groups", default="artifacts/groups.npz", show_default=True, help="The group stage's artifact.")
@click.option("--out", default="artifacts/oob.npz", show_default=True,
              help="Out-of-bag probability sums, member counts and votes per sample; loss curves per member.")
@click.option("--timing", default="metrics/train.json", show_default=True,
              help="Wall-clock figures (a DVC metric, kept out of the artifact).")
@params_option
@set_option
def train(decoded, groups, out, timing, params_file, overrides):
    """Train the ensemble of subset models (whole twin groups in or out) in joblib workers.

    Parameters (section train): model, n_models, train_fraction, epochs, min_steps, batch_size, learning_rate,
    weight_decay, max_shift, augment, max_rotation, max_scale, label_smoothing, balance_classes, conflict_share, device,
    n_jobs, backend, scheduler, time_budget_s, seed."""
    from stages import train as stage

    stage.run(stage_params(stage.TrainParams, "train", params_file, overrides), decoded, groups, out, timing)


@main.command()
@click.option("--decoded", default="artifacts/decoded.npz", show_default=True, help="The decode stage's artifact.")
@click.option("--groups", default="artifacts/groups.npz", show_default=True, help="The group stage's artifact.")
@click.option("--oob", default="artifacts/oob.npz", show_default=True, help="The train stage's artifact.")
@click.option("--results", "results_dir", default="results", show_default=True,
              help="Folder for suspects.txt (the graded line) and samples.csv (one row per sample).")
@click.option("--metrics", default="metrics.json", show_default=True, help="Counts, threshold, seconds per stage.")
@params_option
@set_option
def aggregate(decoded, groups, oob, results_dir, metrics, params_file, overrides):
    """Decide every conflicting twin group and flag other samples on strong evidence.

    Parameters (section aggregate): min_posterior, threshold (null: picked from the data), max_threshold,
    min_disagreement."""
    from stages import aggregate as stage

    stage.run(stage_params(stage.AggregateParams, "aggregate", params_file, overrides), decoded, groups, oob,
              results_dir, metrics)


@main.command()
@click.option("--decoded", default="artifacts/decoded.npz", show_default=True, help="The decode stage's artifact.")
@click.option("--groups", default="artifacts/groups.npz", show_default=True, help="The group stage's artifact.")
@click.option("--oob", default="artifacts/oob.npz", show_default=True, help="The train stage's artifact.")
@click.option("--samples", default="results/samples.csv", show_default=True, help="The aggregate stage's table.")
@click.option("--metrics", default="metrics.json", show_default=True, help="The aggregate stage's metrics.")
@click.option("--out", "out_dir", default="results", show_default=True, help="Folder for the figures and tables.")
@params_option
@set_option
def report(decoded, groups, oob, samples, metrics, out_dir, params_file, overrides):
    """Draw what a finished run found, into OUT: flagged.png (every flagged sample beside its twins, captioned
    with index, given and suggested label; flagged-2.png... when there are many), scores.png (calibrated scores
    and the threshold), confusion.png and confusion.csv (given against suggested label), loss.csv and loss.png
    (the members' training curves).

    Parameters (section report): tiles_per_page, columns, max_twins, dpi."""
    from stages import report as stage

    stage.run(stage_params(stage.ReportParams, "report", params_file, overrides), decoded, groups, oob, samples,
              metrics, out_dir)


@main.command("run")
@click.option("--images", help="idx3/idx4 image file [params: decode.images].")
@click.option("--labels", help="idx1 label file [params: decode.labels].")
@click.option("--results", "results_dir", default=None,
              help="Also write suspects.txt and samples.csv here (and metrics.json beside them).")
@params_option
@click.option("-v", "--verbose", is_flag=True, help="Log each stage on stderr.")
def run_all(images, labels, results_dir, params_file, verbose):
    """Run decode, group, train and aggregate in one process (no DVC, no cache) and print the suspects' indices,
    as hw02.py does, but with params.yaml's parameters."""
    from pathlib import Path

    from stages.aggregate import format_indices
    from pipeline.runner import find_suspects
    from stages import aggregate, decode, group, train

    decode_params = stage_params(decode.DecodeParams, "decode", params_file, (), images=images, labels=labels)
    group_params = load_params(group.GroupParams, "group", params_file)
    train_params = load_params(train.TrainParams, "train", params_file)
    aggregate_params = load_params(aggregate.AggregateParams, "aggregate", params_file)
    log = (lambda message: click.echo(message, err=True)) if verbose else (lambda message: None)
    images_array, labels_array = decode.decode_files(decode_params)
    result = find_suspects(images_array, labels_array, group_params, train_params, aggregate_params, log=log)
    if results_dir:
        aggregate.write_results(result.decisions, labels_array, result.groups.group, result.seconds, results_dir,
                                str(Path(results_dir) / "metrics.json"))
    click.echo(format_indices(result.decisions.flagged.nonzero()[0]))


@main.command()
@click.option("--source", type=click.Choice(["mnist", "notmnist", "cifar20"]), default="mnist", show_default=True,
              help="Bundled clean data set to draw from (cifar20: 20 colour photos).")
@click.option("--n-clean", default=150, show_default=True, help="Distinct clean samples.")
@click.option("--n-evil", default=15, show_default=True, help="Evil twins: a copy with a different label.")
@click.option("--n-two-evil", default=0, show_default=True, help="Groups with two evil copies sharing a wrong label.")
@click.option("--n-benign", default=0, show_default=True, help="Copies with the same label.")
@click.option("--n-orphans", default=0, show_default=True, help="Mislabelled samples with no twin.")
@click.option("--perturbed", is_flag=True, help="Copies get noise (sigma <= 8), brightness/contrast (+-12%%) "
                                                "and a one-pixel shift.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for images-idx3-ubyte.gz (idx4 for colour), labels-idx1-ubyte.gz and truth.txt.")
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
