"""One ``Predictor`` interface over the model files `crack` reads: `crack train` checkpoints (``.pt``, run
by PyTorch) and `crack export` files (``.onnx``, run by ONNX Runtime).  A predictor takes uint8
(N, 3, S, S) RGB batches and returns class probabilities (N, C) as float32 NumPy arrays; a dense one
also returns per-location class logits of a whole image (``logit_map``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from crackcli.errors import CrackError, OptionError, UsageError
from crackcli.io.nvidia import driver_present, driver_too_old
from crackcli.io.system import usable_cpus
from crackcli.model.meta import ModelMeta
from crackcli.model.onnx_properties import (
    INPUT_NAME,
    LOGIT_MAP_OUTPUT,
    PROBS_OUTPUT,
    info_from_properties,
    read_model_file,
    read_properties,
)

if TYPE_CHECKING:
    import onnxruntime as ort


class Predictor(Protocol):
    meta: ModelMeta
    source: Path
    dense: bool  # logit_map is available
    scan_mode: str  # the mode `--mode auto` picks: patch, or dense where the model file vouches for it

    @property
    def fallback(self) -> str | None:
        """Why a GPU asked for or present is not used, else None."""
        ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of a uint8 (N, 3, S, S) batch."""
        ...

    def logit_map(self, image: np.ndarray) -> np.ndarray:
        """Class logits (1, C, H/32, W/32) of a uint8 (1, 3, H, W) image (dense predictors only)."""
        ...

    def describe(self) -> str:
        """One line: the file, the runtime and the device it runs on."""
        ...

    @property
    def on_gpu(self) -> bool:
        """Inference runs on a GPU (once ``ready``), leaving the CPU cores to the rest of a scan."""
        ...

    def ready(self) -> None:
        """Wait until the model can run (ONNX Runtime starts in the background); CrackError if it cannot."""
        ...


def finite_scores(source: Path, values: np.ndarray) -> np.ndarray:
    """``values`` when every one is a number; a model that scores NaN or infinity gives no answer at all."""
    if not np.isfinite(values).all():
        raise CrackError(f"{source}: the model gave NaN or infinite scores; its file is damaged, use another model")
    return values


class TorchPredictor:
    """A `crack train` checkpoint run by PyTorch (eager), on the CPU or a GPU."""

    def __init__(self, path: Path, device: str = "auto") -> None:
        # torch is imported here, not at module level: scanning with ONNX models never pays for it.
        from crackcli.model.checkpoint import load_checkpoint, model_from_checkpoint
        from crackcli.model.devices import cuda_unusable_note, resolve_device

        self.source = path
        self.model, self.meta = model_from_checkpoint(load_checkpoint(path))
        self.device = resolve_device(device)
        # Why a GPU this machine has is not used (``auto`` only: asking for cuda fails instead), else None.
        self.fallback = cuda_unusable_note() if device == "auto" and self.device.type == "cpu" else None
        self.model.to(self.device)
        self.dense = self.model.supports_dense
        self.scan_mode = "patch"  # checkpoints make no claim; crack export --scan-mode does

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            return finite_scores(self.source, torch.softmax(self.model(x).float(), dim=1).cpu().numpy())

    def logit_map(self, image: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.model.logit_map(torch.from_numpy(image).to(self.device)).float().cpu().numpy()
        return finite_scores(self.source, logits)

    def describe(self) -> str:
        return f"{self.source} (PyTorch checkpoint, {self.meta.backbone}, on {self.device})"

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def ready(self) -> None:
        """A checkpoint's model is ready once loaded."""


# Dense inputs are padded (edge pixels repeated) to multiples of this where shapes are padded, and the
# logit map cropped back: one logit per LOGIT_STRIDE input pixels (the ResNet trunks dense mode runs).
DENSE_SHAPE_STEP = 256
LOGIT_STRIDE = 32


class OnnxPredictor:
    """A `crack export` file run by ONNX Runtime; checked (``onnx_files.load_checked``) before it runs.

    The file's metadata is read at once, so a caller can start on what needs only that (sizing windows,
    decoding the first photo); the full check and building the runtime session happen on a thread of
    their own, and the first use of the session (or ``ready``) waits for them and raises what they raised.
    """

    def __init__(
        self, path: Path, device: str = "auto", threads: int | None = None, pad_batches: bool | None = None
    ) -> None:
        check_device(device)
        data = read_model_file(path)
        info = info_from_properties(path, read_properties(path, data))
        # Pad batches and dense images to a few shapes; None: on the CUDA provider, where every new input
        # shape reruns cuDNN's algorithm search.
        self.pad_batches = pad_batches
        self._padded_to = 0
        self.source = path
        self.info = info
        self.meta = info.meta
        self.dense = info.dense
        self.scan_mode = info.scan_mode
        builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-session")
        self._starting = builder.submit(_checked_session, path, data, device, threads)
        builder.shutdown(wait=False)

    def _started(self) -> tuple[ort.InferenceSession, str | None]:
        try:
            return self._starting.result()
        except runtime_refusals() as exc:
            raise CrackError(
                f"{self.source}: ONNX Runtime cannot run this model ({first_line(exc)}); "
                "export it again with crack export"
            ) from None

    def ready(self) -> None:
        self._started()

    @property
    def session(self) -> ort.InferenceSession:
        return self._started()[0]

    @property
    def fallback(self) -> str | None:
        """Why CUDA was wanted but the CPU runs the model, else None."""
        return self._started()[1]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        count = len(batch)
        # A short batch (a photo's last) takes the shape of the largest so far; its extra rows are dropped.
        if self._pads():
            self._padded_to = max(self._padded_to, count)
            if count < self._padded_to:
                batch = np.concatenate([batch, np.zeros((self._padded_to - count, *batch.shape[1:]), batch.dtype)])
        probs = self.session.run([PROBS_OUTPUT], {INPUT_NAME: np.ascontiguousarray(batch)})[0]
        return finite_scores(self.source, probs[:count])

    def logit_map(self, image: np.ndarray) -> np.ndarray:
        if not self.dense:
            raise UsageError(f"{self.source}: this model has no dense output ({self.meta.backbone}); use `mode=patch`")
        height, width = image.shape[2:]
        if self._pads():
            # As with short batches: each photo size would be a new shape to search; a few sizes cover all.
            padded_h, padded_w = (-(-side // DENSE_SHAPE_STEP) * DENSE_SHAPE_STEP for side in (height, width))
            image = np.pad(image, ((0, 0), (0, 0), (0, padded_h - height), (0, padded_w - width)), mode="edge")
        logits = self.session.run([LOGIT_MAP_OUTPUT], {INPUT_NAME: np.ascontiguousarray(image)})[0]
        return finite_scores(self.source, logits[:, :, : -(-height // LOGIT_STRIDE), : -(-width // LOGIT_STRIDE)])

    @property
    def on_gpu(self) -> bool:
        return self.providers[0] == "CUDAExecutionProvider"

    def _pads(self) -> bool:
        if self.pad_batches is None:
            self.pad_batches = self.on_gpu
        return self.pad_batches

    def describe(self) -> str:
        where = self.providers[0].replace("ExecutionProvider", "")
        return f"{self.source} (ONNX {self.info.precision}, {self.meta.backbone}, ONNX Runtime on {where})"


def runtime_refusals() -> tuple[type[Exception], ...]:
    """The errors by which ONNX Runtime refuses a graph it cannot run (as opposed to a bug of ours)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    return (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph, ort_errors.NotImplemented)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, at most 160 characters: what a one-line message quotes."""
    return (str(exc).strip().splitlines() or ["no reason given"])[0][:160]


def check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda"):
        raise OptionError("device", "unknown device; choose auto, cpu or cuda", f"'{device}'")


def _checked_session(path: Path, data: bytes, device: str, threads: int | None):
    """The session of model file ``path`` (its bytes ``data``) once the whole file has passed its checks."""
    from crackcli.model.onnx_files import load_checked

    model, _ = load_checked(path, data)
    # The runtime gets the graph as checked (parsed and written again), not the file's own bytes.
    return create_session(model.SerializeToString(), device, threads)


def create_session(model: bytes, device: str = "auto", threads: int | None = None):
    """An ONNX Runtime session on ``device`` and, when CUDA was wanted but is not what runs, the reason.

    ``auto`` uses CUDA only where an NVIDIA driver is present, so laptops never pay for probing it.
    """
    import onnxruntime as ort

    check_device(device)
    want_cuda = device == "cuda" or (device == "auto" and driver_present())
    cpu_only: list = ["CPUExecutionProvider"]
    providers = cpu_only
    fallback = None
    if want_cuda:
        if "CUDAExecutionProvider" in ort.get_available_providers():
            if hasattr(ort, "preload_dlls"):
                ort.preload_dlls()  # CUDA libraries installed as pip packages (e.g. with torch)
            # Exhaustive cuDNN search, chosen on purpose: patch batches are padded to one shape (see
            # ``predict``), so the search runs once per job and picks the fastest kernels for it.
            providers = [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "EXHAUSTIVE"}), *cpu_only]
        else:
            fallback = "this ONNX Runtime has no CUDA provider (install onnxruntime-gpu)"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cpus()
    options.inter_op_num_threads = 1
    # Idle ONNX Runtime threads block instead of spinning: between batches they would burn the cores that
    # shrink the next rows, render the last photo and decode the next (2 cores, a folder: 0.93x the wall
    # time, 0.86x the CPU; one photo: the same wall time, 0.92x the CPU).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Provider load failures become our one-line warning, not a log dump: the session's logger and the
    # default one (which reports provider libraries that fail to load, on stdout or stderr) are both silenced.
    ort.set_default_logger_severity(4)
    options.log_severity_level = 4
    try:
        # No fallback of ONNX Runtime's own: it prints an "EP Error" banner on stdout, which would
        # corrupt `--json` output; a provider that fails to start is retried here on the CPU instead.
        session = ort.InferenceSession(model, options, providers=providers, enable_fallback=0)
    except (RuntimeError, ValueError) as exc:
        if providers is cpu_only:
            raise
        fallback = f"the CUDA provider failed to start ({first_line(exc)})"
        session = ort.InferenceSession(model, options, providers=cpu_only, enable_fallback=0)
    if want_cuda and fallback is None and "CUDAExecutionProvider" not in session.get_providers():
        cuda = onnxruntime_cuda_version() or "its"
        fallback = f"the CUDA provider did not start (no GPU, or the CUDA {cuda} / cuDNN libraries not found)"
    if fallback is not None and providers is not cpu_only:
        fallback = onnxruntime_driver_note() or fallback
    return session, fallback


def onnxruntime_cuda_version() -> str | None:
    """The CUDA version this onnxruntime-gpu was built for (e.g. "13.0"), None for CPU builds."""
    from onnxruntime.capi import build_and_package_info

    return getattr(build_and_package_info, "cuda_version", None) or None


def onnxruntime_driver_note() -> str | None:
    """Why the NVIDIA driver cannot run this onnxruntime-gpu build, or None."""
    return driver_too_old(onnxruntime_cuda_version(), "onnxruntime-gpu")


def load_predictor(path: Path, device: str = "auto", wait: bool = True) -> Predictor:
    """The predictor for a model file, chosen by its suffix; with ``wait=False`` an ONNX file's full check
    and runtime may still be starting (``ready`` waits and raises what they raise)."""
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return TorchPredictor(path, device)
    if suffix != ".onnx":
        raise UsageError(
            f"{path}: unknown model file type '{suffix}'; pass a .onnx file from crack export or a .pt checkpoint"
        )
    predictor = OnnxPredictor(path, device)
    if wait:
        predictor.ready()
    return predictor


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over axis 1 (classes) of (N, C) or (N, C, H, W) logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
