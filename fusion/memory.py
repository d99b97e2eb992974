"""Memory: the estimate of a run's peak (training and evaluation), the memory available on a device,
the refusal of a run that cannot fit and the one out-of-memory message, and the CPU allocator's
tuning (docs/whole_scenes.md)."""
import ctypes
import os

import torch

from model.spectral_upsample import widths

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc malloc.h
# Fused cubes (float32 H x W x C) above this many bytes are computed, scored and written tile by tile
# (fusion.results). Held whole, a cube costs about eight times its size at the peak (the network's
# activations, the output in the input's units, the metrics' float64 copies): 256 MiB keeps that near
# 2 GB, far under MATLAB v5's 2 GB per variable, while the papers' images (at most a few tens of MB)
# stay whole, with exactly the files and numbers they always had.
STREAM_OUTPUT_BYTES = 256 * 2 ** 20

# A training step's peak over what it keeps for backward: the gradients of the widest layers and
# the allocator's slack (measured 1.37-1.48 on a stage-3 / PFS2C2 stage-1 step, CPU, 300 x 300 x 68).
BACKWARD_PEAK_FACTOR = 1.5
# Evaluating the fused image (evaluation.py, NumPy, main memory) holds the reference and the estimate
# as float64 and, for SSIM, blurred maps of the whole cube: about this many float64 H x W x C arrays.
EVALUATION_FLOAT64_CUBES = 10
_OOM_PHRASES = ("DefaultCPUAllocator", "can't allocate memory", "out of memory")


def kept_floats_per_pixel(method, hsi_channels, msi_channels):
    """Floats per HR pixel that a step of the largest stage keeps for backward (stage 3; PFS2C2's
    stage 1 is about as large): the spectral upsampler's input (Cm), each hidden layer's output before
    and after its LeakyReLU (2 w for each width w of ``model.spectral_upsample.widths``), its last
    convolution's output and X (2 C), and up to two more HR x C tensors in the loss (PFS2C2's SpaUp
    output and its difference; UDALN's are smaller); PFS2C2's spectral attention keeps its input too.
    """
    sizes = widths(msi_channels, hsi_channels)
    kept = msi_channels + 2 * sum(sizes[1:-1]) + 4 * hsi_channels
    if method == "pfs2c2":
        kept += sizes[-2]
    return kept


def estimate_memory(method, height, width, hsi_channels, msi_channels, scale, batch_pixels=None, reference=True):
    """Peak memory of a run on an H x W x C image with a Cm-band HR-MSI and ratio r, in bytes, as
    ``(training, evaluation)``:

    training (on the training device) = 4 bytes x (BACKWARD_PEAK_FACTOR x ``kept_floats_per_pixel`` x H W
    + the inputs: HR-MSI and a mask, (Cm + 1) H W, and twice the LR-HSI, 2 C H W / r^2); in patch mode
    (``batch_pixels``: the HR pixels of one step's batch of patches, B (r P)^2, fusion.patches) the
    kept floats count over the batch instead of H W, plus the batch's own copies of its patches and
    masks, (Cm + 1 + 2 C / r^2) per batch pixel;
    evaluation (NumPy, main memory) = 8 bytes x EVALUATION_FLOAT64_CUBES x H W C + the float32 reference
    (when ``reference``); a fused cube larger than fusion.results.STREAM_OUTPUT_BYTES is computed, scored
    and written tile by tile: then the first term is twice that size, whatever the scene's.

    On the CPU both use the same memory and the allocator keeps what training freed
    (``tune_cpu_allocator``), so they add up. Within about 10% of the peak resident memory measured
    for a short run at 300 x 300 x 68 (UDALN, PFS2C2); tests/test_func.py checks the count against
    what torch keeps for backward.
    """
    hr, lr = height * width, height * width / scale ** 2
    kept = kept_floats_per_pixel(method, hsi_channels, msi_channels)
    batch = hr if batch_pixels is None else batch_pixels
    training = 4 * (BACKWARD_PEAK_FACTOR * kept * batch + (msi_channels + 1) * hr + 2 * hsi_channels * lr)
    if batch_pixels is not None:
        training += 4 * (msi_channels + 1 + 2 * hsi_channels / scale ** 2) * batch_pixels
    if 4 * hr * hsi_channels > STREAM_OUTPUT_BYTES:
        evaluation = 2 * STREAM_OUTPUT_BYTES  # a tile's activations and a QNR cell (about 0.5 GB measured)
    else:
        evaluation = 8 * EVALUATION_FLOAT64_CUBES * hr * hsi_channels
    evaluation += 4 * hr * hsi_channels if reference else 0
    return int(training), int(evaluation)


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_free():
    """Memory left under this process's cgroup limit (v2, else v1), or None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2 ** 60:  # v1 writes ~2^63 for "no limit"
            return max(limit - usage, 0)
    return None


def available_memory(device):
    """Bytes available to this run on ``device`` (a torch.device), or None when it cannot be told.
    CUDA: free device memory (torch.cuda.mem_get_info) plus what PyTorch's cache holds unused. CPU:
    MemAvailable of /proc/meminfo (else os.sysconf's available pages), capped by a cgroup limit."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            pass
    limited = _cgroup_free()
    values = [v for v in (available, limited) if v is not None]
    return min(values) if values else None


def image_size(hsi_shape, msi_shape):
    """'H x W x C (LR-HSI h x w, HR-MSI H x W x Cm)' from the 1 x C x h x w and 1 x Cm x H x W shapes."""
    _, c, h, w = hsi_shape
    _, cm, hh, ww = msi_shape
    return f"{hh} x {ww} x {c} (LR-HSI {h} x {w}, HR-MSI {hh} x {ww} x {cm})"


def out_of_memory_message(where, image, device, need=None, available=None, resume=None, patches=False):
    """The one message for a run that does not fit: where (stage), the image size, the device, and what
    to do. ``need``/``available`` (bytes) for a refusal before training; ``resume``: the folder of a
    checkpoint that can be continued; ``patches``: the run trains on patches (the advice is then a
    smaller batch)."""
    device = torch.device(device)
    if need is None:
        text = f"out of memory in {where} on {device} fusing a {image}"
    else:
        text = (f"not enough memory on {device} to fuse a {image}: {where} needs about {need / 2 ** 30:.1f} GiB, "
                f"{available / 2 ** 30:.1f} GiB are available")
    advice = "crop the image or fuse a smaller region"
    if patches:
        advice = f"give a smaller --patch_size or --patches_per_step, or {advice}"
    if device.type == "cuda":
        advice = f"run on the CPU with --device cpu (main memory is usually larger), or {advice}"
        if resume is not None:
            advice += f"; to continue this run on the CPU: --resume {resume} --device cpu"
    return f"{text}: {advice}"


def is_out_of_memory(exc):
    """True for torch.cuda.OutOfMemoryError, MemoryError, and a RuntimeError of the CPU allocator."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(phrase in str(exc) for phrase in _OOM_PHRASES)


def check_memory(method, hsi_shape, msi_shape, scale, device, available=None, batch_pixels=None, reference=True):
    """Refuse (raise OutOfMemory) a run that clearly cannot fit: ``estimate_memory`` (``batch_pixels``:
    the HR pixels of one step's batch in patch mode, else None; ``reference``: an HR-HSI reference is held) against
    ``available_memory`` (or ``available``: {'device': bytes, 'host': bytes}), before anything is
    written. On CUDA the training part is checked against the device, the evaluation against main
    memory; on the CPU their sum against main memory. Nothing is refused when the memory cannot be told.
    ``hsi_shape``/``msi_shape``: 1 x C x h x w and 1 x Cm x H x W."""
    device = torch.device(device)
    _, c, _, _ = hsi_shape
    _, cm, height, width = msi_shape
    training, evaluation = estimate_memory(method, height, width, c, cm, scale, batch_pixels, reference)
    if available is None:
        cpu = available_memory(torch.device("cpu"))
        available = {"device": available_memory(device) if device.type == "cuda" else cpu, "host": cpu}
    patches = batch_pixels is not None
    batch = f", a batch of patches of {batch_pixels} HR pixels" if patches else ""
    # (memory, bytes needed, what needs them, device, whether a smaller batch of patches helps)
    needs = ([("device", training, f"training ({method}, stage 3{batch})", device, patches),
              ("host", evaluation, "evaluating the fused image", torch.device("cpu"), False)]
             if device.type == "cuda" else
             [("host", training + evaluation, f"training and evaluation ({method}{batch})", device, patches)])
    for key, need, where, on, smaller_batch in needs:
        if available.get(key) is not None and need > available[key]:
            raise OutOfMemory(out_of_memory_message(where, image_size(hsi_shape, msi_shape), on, need=need,
                                                    available=available[key], patches=smaller_batch))


class OutOfMemory(RuntimeError):
    """The run does not fit in the memory of its device (refused before training, or hit during it)."""


def tune_cpu_allocator():
    """Keep freed memory in the process (glibc): each training step allocates the same large
    tensors again, and returning them to the system makes every step pay fresh page faults
    (about 20% of a stage-3 step at the paper's size). A no-op where glibc is not the allocator."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2 ** 20)  # glibc's maximum: tensors below this come from the heap
        libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 30)       # and the heap is not trimmed back below 1 GiB
    except (OSError, AttributeError):
        pass
