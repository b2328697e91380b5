"""What this machine can give a run: CUDA GPUs and memory, asked before the work that needs them starts.

torch is imported only inside the GPU probes: the config is checked before torch's import (about 2 s).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from linreg.errors import InvalidInput

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig


def require_gpus(trainer: DictConfig) -> None:
    """`trainer=gpu` where torch sees no GPU, or more GPUs than it sees: said at once, not as Lightning's
    exception after its import."""
    if trainer.get("accelerator") not in ("gpu", "cuda"):
        return
    import torch  # only here: a config is checked before torch's import (about 2 s) starts

    if not torch.cuda.is_available():
        raise InvalidInput(
            f"trainer.accelerator: {trainer.accelerator!r}, but torch {torch.__version__} sees no CUDA GPU here; "
            "expected a machine with an NVIDIA GPU and a CUDA build of torch, or trainer=cpu"
        )
    devices, available = trainer.get("devices", 1), torch.cuda.device_count()
    if type(devices) is int and devices > available:
        raise InvalidInput(
            f"trainer.devices: {devices} GPUs, but torch sees {available} here; "
            f"expected trainer.devices={available} or fewer, or a launcher with more machines"
        )


# float32 X and Y, their train/val/test copies, and a float64 parse or generation buffer: about 4x the data
BYTES_PER_VALUE = 4 * 4

# The share of the memory available now that the data may take: the rest is for everything else the run and
# the machine allocate meanwhile.
USABLE_SHARE = 0.8


def require_memory(key: str, needed: int) -> None:
    """Refuse data that would not fit in the memory available now: a clear error instead of a swap storm."""
    available = available_memory()
    if needed > USABLE_SHARE * available:
        raise InvalidInput(
            f"{key}: the data needs about {needed / 2**30:.1f} GiB in memory, more than the "
            f"{available / 2**30:.1f} GiB available; expected a smaller data set"
        )


def available_memory() -> int:
    """Bytes the kernel says a process can still allocate without swapping (MemAvailable)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def device_room(device: torch.device) -> int | None:
    """Bytes the data may take on the accelerator `device` now: `USABLE_SHARE` of what a CUDA GPU's driver
    counts as free (other processes' use already taken off) plus what torch's caching allocator holds unused
    (the driver counts that as used). None where torch cannot say: any device but a CUDA GPU."""
    if device.type != "cuda":
        return None
    import torch  # only here, as in the GPU probes above

    free, _total = torch.cuda.mem_get_info(device)
    cached_unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(USABLE_SHARE * (free + cached_unused))
