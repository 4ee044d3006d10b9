"""The device calls that exist only on CUDA, behind one helper the CPU path calls too.

Synchronising, peak-memory statistics, pinned host memory and non-blocking copies are
CUDA features; on the CPU each of these functions is a no-op or returns what the CPU has
(no pinned memory, blocking copies, no allocator statistics: ``None``). Code that times
or measures (``benchmarks/gpu_check.py``) calls them unconditionally, so a CPU run goes
through the same lines as a CUDA run.
"""

from __future__ import annotations

import gc
import platform
import shutil
import subprocess

import torch

__all__ = ["synchronize", "reset_peak_memory", "peak_memory_gib", "pin_memory", "to_device",
           "release_memory", "device_info"]


def _cuda(device) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device) -> None:
    """Wait for the work queued on ``device`` (CUDA); the CPU runs synchronously."""
    if _cuda(device):
        torch.cuda.synchronize(device)


def reset_peak_memory(device) -> None:
    """Start a new peak-memory window on ``device`` (CUDA only; a no-op on the CPU)."""
    if _cuda(device):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device) -> float | None:
    """GiB allocated by tensors at the peak since :func:`reset_peak_memory` (CUDA), or
    ``None`` on the CPU, whose allocator keeps no such statistic."""
    if _cuda(device):
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


def pin_memory(device) -> bool:
    """Whether a DataLoader feeding ``device`` should pin its batches (CUDA only)."""
    return _cuda(device)


def to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """``tensor`` on ``device``: an asynchronous copy to CUDA (from pinned memory it
    overlaps the copy with compute), a plain one elsewhere."""
    return tensor.to(device, non_blocking=_cuda(device))


def release_memory(device) -> None:
    """Collect garbage and, on CUDA, return cached blocks to the driver (between
    measurements, so one does not inherit the last one's cache)."""
    gc.collect()
    if _cuda(device):
        torch.cuda.empty_cache()


def _driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (torch does not report it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def device_info(device) -> dict:
    """What a measurement on ``device`` must record: torch and its CUDA / cuDNN versions,
    the TF32 switches, and the GPU (name, capability, memory, driver) or the CPU."""
    dev = torch.device(device)
    info = {"device": str(dev), "torch": torch.__version__, "python": platform.python_version(),
            "cuda_runtime": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "torch_threads": torch.get_num_threads()}
    if _cuda(dev):
        props = torch.cuda.get_device_properties(dev)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 2),
                    multiprocessors=props.multi_processor_count,
                    driver=_driver_version(), cudnn=torch.backends.cudnn.version(),
                    cudnn_benchmark=torch.backends.cudnn.benchmark,
                    cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                    matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    else:
        info["peak_memory"] = "a CUDA allocator statistic: null on the CPU"
    return info
