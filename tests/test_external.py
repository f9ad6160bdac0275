"""Evidence a user brings (docs: "Bring your own evidence"): probabilities, embeddings or a model, checked against
the data they describe, then used in place of the tool's own members, with twin conflicts still decided by
evidence that never saw a copy."""

import numpy as np
import pytest
from conftest import run_cli

from pipeline.api import find_issues
from pipeline.plant import PlantSpec, copies_and_originals, load_source, plant
from stages.errors import InputError
from stages.external import ExternalParams, read_external
from stages.heads import knn_probs, logistic_probs, ridge_probs, unit_rows

N, K = 40, 3


@pytest.fixture(scope="module")
def case():
    """60 digits of 3 classes, 4 evil twins (exact copies, another label) and 3 wrong labels without a twin; and
    each sample's true label."""
    images, labels = load_source("mnist")
    keep = labels < 3
    planted = plant(images[keep], labels[keep], PlantSpec(n_clean=60, n_evil=4, n_orphans=3, seed=2))
    return planted, labels[keep][planted.source]


def data(n=N, k=K, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8), rng.integers(0, k, n)


def read(tmp_path, name, array, **params):
    path = tmp_path / name
    np.save(path, array) if name.endswith(".npy") else np.savez(path, **array)
    images, labels = data()
    return read_external(ExternalParams(**{"pred_probs": str(path)} | params), images, labels, None, K)


def good_probs(n=N, k=K, seed=0):
    p = np.random.default_rng(seed).dirichlet(np.ones(k), n)
    return p


@pytest.mark.parametrize(
    "array, problem",
    [
        (good_probs(N - 1), "has shape (39, 3), not (40, 3)"),
        (good_probs(N, 4), "has shape (40, 4), not (40, 3)"),
        (np.where(np.eye(N, K, dtype=bool), np.nan, good_probs()), "values that are NaN or infinite"),
        (good_probs() - 0.5, "negative values"),
        (good_probs() * 1.07, "rows sum to 1.07..1.07, not 1"),
    ],
    ids=["rows", "classes", "nan", "negative", "sums"],
)
def test_probabilities_that_cannot_be_what_they_claim_are_refused_naming_the_file(tmp_path, array, problem):
    with pytest.raises(InputError) as exc:
        read(tmp_path, "p.npy", array)
    assert str(exc.value).startswith(str(tmp_path / "p.npy")) and problem in str(exc.value)


def test_rows_that_do_not_sum_to_one_are_divided_by_their_sum_only_where_asked(tmp_path):
    given = read(tmp_path, "p.npy", good_probs() * 3, normalise=True)
    assert np.allclose(given.pred_probs, good_probs()) and given.pred_probs.dtype == np.float64


def test_an_npz_member_is_taken_by_name_or_as_the_only_array(tmp_path):
    assert np.allclose(read(tmp_path, "a.npz", {"pred_probs": good_probs(), "other": 1}).pred_probs, good_probs())
    assert np.allclose(read(tmp_path, "b.npz", {"p": good_probs()}).pred_probs, good_probs())
    with pytest.raises(InputError, match="holds arrays \\['p', 'q'\\]: name one"):
        read(tmp_path, "c.npz", {"p": good_probs(), "q": good_probs()})
    images, labels = data()
    chosen = ExternalParams(pred_probs=f"{tmp_path / 'c.npz'}:q")
    assert np.allclose(read_external(chosen, images, labels, None, K).pred_probs, good_probs())


def test_a_csv_names_its_columns_by_class_in_any_order(tmp_path):
    probs = good_probs()
    rows = ["index,cat,ant,bee"] + [f"{i},{p[2]},{p[0]},{p[1]}" for i, p in enumerate(probs)]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    images, labels = data()
    given = read_external(ExternalParams(pred_probs=str(tmp_path / "p.csv")), images, labels, ["ant", "bee", "cat"], K)
    assert np.allclose(given.pred_probs, probs)
    (tmp_path / "q.csv").write_text("ant,bee,dog\n1,0,0\n")
    with pytest.raises(InputError, match="its header must name each class once"):
        read_external(ExternalParams(pred_probs=str(tmp_path / "q.csv")), images, labels, ["ant", "bee", "cat"], K)


def test_probabilities_that_agree_with_nearly_every_label_are_noted_as_likely_in_sample(tmp_path):
    images, labels = data(200)
    seen = np.eye(K)[labels] * 0.9 + 0.1 / K
    path = tmp_path / "seen.npy"
    np.save(path, seen)
    note = read_external(ExternalParams(pred_probs=str(path)), images, labels, None, K).note
    assert "likeliest class of 100.0% of the rows" in note and "out-of-sample" in note
    np.save(path, good_probs(200))
    assert read_external(ExternalParams(pred_probs=str(path)), images, labels, None, K).note == ""


@pytest.mark.parametrize(
    "array, problem",
    [(np.zeros((N - 1, 4)), "has shape (39, 4), not (40, D)"), (np.full((N, 4), np.inf), "NaN or infinite")],
    ids=["rows", "inf"],
)
def test_features_that_cannot_be_embeddings_of_these_samples_are_refused(tmp_path, array, problem):
    np.save(tmp_path / "f.npy", array)
    images, labels = data()
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        read_external(ExternalParams(features=str(tmp_path / "f.npy")), images, labels, None, K)


def test_a_torchscript_model_embeds_the_images_and_a_model_that_fails_is_one_line(tmp_path):
    import torch

    class Mean(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.mean((2, 3)).sum(1), x.amax((1, 2, 3))], 1)

    torch.jit.save(torch.jit.script(Mean()), str(tmp_path / "m.pt"))
    images, labels = data()
    given = read_external(ExternalParams(model=str(tmp_path / "m.pt"), batch_size=16), images, labels, None, K)
    assert given.features.shape == (N, 2) and np.allclose(given.features[:, 1], images.max((1, 2, 3)) / 255)

    class Colour(torch.nn.Module):  # wants three channels: the grey images fail in it
        def forward(self, x):
            return torch.nn.functional.conv2d(x, torch.ones(1, 3, 1, 1)).flatten(1)

    torch.jit.save(torch.jit.script(Colour()), str(tmp_path / "c.pt"))
    with pytest.raises(InputError, match=r"c.pt: failed on images 0..15 of shape \(16, 1, 8, 8\): RuntimeError"):
        read_external(ExternalParams(model=str(tmp_path / "c.pt"), batch_size=16), images, labels, None, K)
    (tmp_path / "x.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="x.pt: is not a TorchScript model"):
        read_external(ExternalParams(model=str(tmp_path / "x.pt")), images, labels, None, K)


def test_an_exported_program_embeds_the_images_too(tmp_path):
    import torch

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    torch.export.save(torch.export.export(Mean(), (torch.zeros(4, 1, 8, 8),)), str(tmp_path / "m.pt2"))
    images, labels = data()
    given = read_external(ExternalParams(model=str(tmp_path / "m.pt2"), batch_size=4), images, labels, None, K)
    assert np.allclose(given.features[:, 0], images.mean((1, 2, 3)) / 255, atol=1e-6)


def test_an_onnx_model_without_onnxruntime_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(
        builtins,
        "__import__",
        lambda name, *a, **k: (_ for _ in ()).throw(ImportError()) if name == "onnxruntime" else real(name, *a, **k),
    )
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    images, labels = data()
    with pytest.raises(InputError, match="m.onnx: an .onnx model needs onnxruntime"):
        read_external(ExternalParams(model=str(tmp_path / "m.onnx")), images, labels, None, K)


def test_a_torchvision_model_whose_weights_are_not_cached_says_where_to_put_them(monkeypatch, tmp_path):
    pytest.importorskip("torchvision", exc_type=Exception)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    images, labels = data()
    with pytest.raises(InputError, match="weights not in the local cache: download https://"):
        read_external(ExternalParams(model="torchvision:resnet18"), images, labels, None, K)


@pytest.mark.parametrize("head", [ridge_probs, logistic_probs, knn_probs])
def test_each_head_learns_separable_embeddings(head):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    x = unit_rows((rng.normal(size=(300, 16)) + 4 * np.eye(3, 16)[labels]).astype(np.float32))
    options = {"ridge_probs": {"penalty": 1e-3}, "logistic_probs": {"weight_decay": 1e-3}}.get(head.__name__, {})
    probs = head(x, labels, np.arange(200), np.arange(200, 300), n_classes=3, **options)
    assert probs.shape == (100, 3) and np.allclose(probs.sum(1), 1) and (probs.argmax(1) == labels[200:]).mean() > 0.9


def test_with_features_heads_in_twin_group_folds_find_the_evil_twins_not_their_originals(case):
    """Features that know each digit's true class (plus noise): a copy carries its original's features, so only
    folds that keep a twin group on one side can tell which of its labels the rest of the data contradicts."""
    case, true = case
    rng = np.random.default_rng(1)
    features = rng.normal(size=(len(true), 8)) + 6 * np.eye(3, 8)[true]
    copies, originals = copies_and_originals(case)
    features[copies] = features[originals]
    result = find_issues(case.images, case.labels, features=features)
    assert result.decided_by == "heads"
    assert set(np.flatnonzero(result.flagged)) == set(case.truth.tolist())


def test_with_probabilities_and_no_twin_conflict_no_member_trains(case):
    case, true = case
    alone = np.setdiff1d(np.arange(len(case.labels)), copies_and_originals(case)[0])  # the evil copies left out
    probs = np.eye(3)[true[alone]] * 0.8 + 0.2 / 3
    result = find_issues(case.images[alone], case.labels[alone], pred_probs=probs)
    assert result.decided_by == "pred_probs" and np.isfinite(result.wrong_prob).all()
    wrong = np.flatnonzero(case.labels[alone] != true[alone])
    assert set(np.flatnonzero(result.flagged)) == set(wrong.tolist())


def test_twins_run_takes_probabilities_and_a_bad_file_is_one_line(tmp_path, case):
    from pipeline.plant import write_case

    case, _ = case
    write_case(case, tmp_path)
    np.save(tmp_path / "p.npy", np.ones((len(case.labels), 3)))
    done = run_cli(
        "run",
        "--images",
        "images-idx3-ubyte.gz",
        "--labels",
        "labels-idx1-ubyte.gz",
        "-S",
        "decode.num_classes=3",
        "--pred-probs",
        "p.npy",
        cwd=tmp_path,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr == "error: p.npy: rows sum to 3..3, not 1 (logits? apply softmax; or set external.normalise "
        "to divide each row by its sum)\n"
    )
    assert not (tmp_path / "results").exists()
