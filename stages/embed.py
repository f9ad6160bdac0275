"""Embeddings from a model the user brings (docs: "Bring your own evidence"), in batches, on the GPU where there is
one, through the members' worker backends where asked.

What each kind of model is given:
- a TorchScript file (torch.jit.save), an exported program (torch.export.save, .pt2) or an .onnx file: float32
  images (B, C, H, W) in [0, 1] at the data's own size and channels (grey: C = 1; an alpha channel is dropped). A
  model that needs another size or normalisation does it inside itself (script a wrapper). Its output, flattened
  per image, is the embedding (or the first of a tuple).
- torchvision:NAME: the images as that model's weights expect (their transforms: resized, cropped, normalised; grey
  repeated to three channels), and the layer before its classifier is the embedding. Its weights must already be in
  the local torch cache (nothing is downloaded): where they are not, the error says which file to put where.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stages.errors import InputError

if TYPE_CHECKING:
    from stages.external import ExternalParams


def load_model(spec: str, device: str):
    """A function from a float32 image batch (B, C, H, W) in [0, 1] (a torch tensor) to embeddings (B, D), numpy."""
    if spec.startswith("torchvision:"):
        return torchvision_model(spec.removeprefix("torchvision:"), device)
    path = Path(spec)
    if not path.is_file():
        raise InputError(spec, "no such model file")
    if path.suffix.lower() == ".onnx":
        return onnx_model(path)
    import warnings

    import torch

    exported = path.suffix.lower() == ".pt2"
    try:
        with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; it still loads what people have
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.export.load(str(path)).module() if exported else torch.jit.load(str(path), map_location="cpu")
        model = model.to(device)
    except Exception as exc:  # not what it claims: a state dict, a pickled module, any other file
        kind = "an exported program (torch.export.save)" if exported else "a TorchScript model (torch.jit.save)"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(spec, f"is not {kind} ({type(exc).__name__}: {first})") from None

    def run(batch):
        with torch.no_grad():
            out = model(batch.to(device))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.detach().float().flatten(1).cpu().numpy()

    return run


def onnx_model(path: Path):
    try:
        import onnxruntime
    except ImportError:
        raise InputError(str(path), "an .onnx model needs onnxruntime (pip install onnxruntime)") from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InputError(str(path), f"is not a readable ONNX model ({type(exc).__name__})") from None
    name = session.get_inputs()[0].name

    def run(batch):
        out = session.run(None, {name: batch.numpy()})[0]
        return np.asarray(out, np.float32).reshape(len(out), -1)

    return run


def torchvision_model(name: str, device: str):
    """torchvision's NAME with its default weights, read from the local torch cache, its classifier taken off."""
    try:
        import torch
        import torchvision
    except Exception as exc:  # not installed, or a build that does not match torch's
        raise InputError(
            f"torchvision:{name}", f"torchvision cannot be imported ({type(exc).__name__}: {exc})"
        ) from None
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        raise InputError(f"torchvision:{name}", "no such torchvision model") from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not cached.is_file():
        raise InputError(f"torchvision:{name}", f"weights not in the local cache: download {weights.url} to {cached}")
    model = torchvision.models.get_model(name)
    model.load_state_dict(torch.load(cached, map_location="cpu"))
    head = "fc" if hasattr(model, "fc") else "classifier" if hasattr(model, "classifier") else "head"
    layer = getattr(model, head)
    if isinstance(layer, torch.nn.Sequential):
        layer[-1] = torch.nn.Identity()
    else:
        setattr(model, head, torch.nn.Identity())
    model = model.to(device).eval()
    prepare = weights.transforms()

    def run(batch):
        batch = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
        with torch.no_grad():
            return model(prepare(batch).to(device)).flatten(1).cpu().numpy()

    return run


def embed_rows(images: np.ndarray, spec: str, device: str, batch_size: int) -> np.ndarray:
    """float32 (N, D): images (N, H, W, C) uint8 embedded `batch_size` at a time by the model `spec`."""
    import torch

    model = load_model(spec, device)
    out = []
    for start in range(0, len(images), batch_size):
        part = images[start : start + batch_size, ..., : 3 if images.shape[-1] == 4 else images.shape[-1]]
        batch = torch.from_numpy(np.ascontiguousarray(part.transpose(0, 3, 1, 2))).float() / 255
        try:
            out.append(np.asarray(model(batch), np.float32))
        except InputError:
            raise
        except Exception as exc:  # a model that does not take these images: wrong channels, size, dtype
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise InputError(
                spec,
                f"failed on images {start}..{start + len(part) - 1} of shape {tuple(batch.shape)}: "
                f"{type(exc).__name__}: {first}",
            ) from None
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def embed(images: np.ndarray, params: ExternalParams) -> np.ndarray:
    """float32 (N, D): the images embedded by params.model, in chunks shared among params.n_jobs workers (one per
    core with -1; a dask cluster with backend dask), or in this process on a GPU."""
    from stages.external import progress
    from stages.workers import member_pool, resolve_device, worker_layout

    device = resolve_device(params.device)
    workers, _ = worker_layout(params, device)
    start, n = time.monotonic(), len(images)
    if workers == 1 or n <= params.batch_size:
        rows = embed_rows(images, params.model, device, params.batch_size)
    else:
        bounds = np.linspace(0, n, min(workers, math.ceil(n / params.batch_size)) + 1).astype(int)
        calls = [
            (embed_rows, (images[a:b], params.model, device, params.batch_size), {}) for a, b in zip(bounds, bounds[1:])
        ]
        with member_pool(params.backend, workers, params.scheduler) as run_wave:
            rows = np.concatenate(run_wave(calls))
    progress(n, n, time.monotonic() - start)
    return rows
