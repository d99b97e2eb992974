"""Training mechanics shared by every method: seeding, the learning-rate schedule, the stage loop
and the run folder (options, precision log, modules, output, metrics)."""
import ctypes
import json
import logging
import math
import os
import random
import tempfile

import numpy as np
import scipy.io
import torch
from tqdm import tqdm

log = logging.getLogger("fusion")

_UMASK = os.umask(0)
os.umask(_UMASK)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc malloc.h
LOSS_CHECK_EVERY = 100  # epochs between loss read-outs (progress bar, NaN/Inf check)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf."""


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


def set_seed(seed):
    """Seed every generator the training touches (the original seeds torch, numpy and random with 2)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


# ----------------------------------------------------------------------------- schedule

def stage_lr(epoch, lr, epochs, decay_begin, reset_each_epoch=False):
    """Learning rate used in ``epoch`` (1-based): constant, then linear decay reaching 0 after the last epoch.

    The original subtracts lr / (epochs - decay_begin + 1) after every epoch >= decay_begin, so epoch e
    runs at lr * (1 - max(0, e - decay_begin) / (epochs - decay_begin + 1)).
    ``reset_each_epoch`` reproduces the PFS2C2 authors' script, which resets the rate before each
    decrement, so every decaying epoch runs at lr - lr / (epochs - decay_begin + 1).
    """
    steps = max(0, epoch - decay_begin)
    if steps == 0:  # also covers decay_begin past the last epoch: a constant rate
        return lr
    if reset_each_epoch:
        steps = 1
    return lr * (1.0 - steps / (epochs - decay_begin + 1))


def train_stage(title, optimizers, loss_fn, lr, epochs, decay_begin, evaluate=None, eval_every=1000,
                reset_each_epoch=False):
    """Minimise ``loss_fn()`` for ``epochs`` epochs with ``optimizers`` on the stage's schedule.

    ``evaluate(epoch, lr, last)`` is called every ``eval_every`` epochs and after the last one. Raises
    TrainingDiverged if the loss becomes NaN or Inf. Returns the final loss.
    """
    bar = tqdm(range(1, epochs + 1), desc=title, unit="ep", dynamic_ncols=True, mininterval=1.0,
               disable=None)
    value = float("nan")
    for epoch in bar:
        current_lr = stage_lr(epoch, lr, epochs, decay_begin, reset_each_epoch)
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = current_lr
            optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        last = epoch == epochs
        if epoch % LOSS_CHECK_EVERY == 0 or last:
            value = loss.item()
            if not math.isfinite(value):
                bar.close()
                raise TrainingDiverged(f"{title}: the loss became {value} at epoch {epoch} (lr {current_lr:g}); "
                                       "try a smaller learning rate or check the input data")
            bar.set_postfix(loss=f"{value:.3e}", lr=f"{current_lr:.2e}", refresh=False)
        if evaluate is not None and (epoch % eval_every == 0 or last):
            evaluate(epoch, current_lr, last)
    bar.close()
    return value


# ----------------------------------------------------------------------------- run folder

def run_folder_name(args):
    """The original naming, <data>_<scale>_S1=<lr>_<epochs>_<decay>_S2=..._S3=..., prefixed with the
    method for methods other than UDALN and suffixed with the stages for the ablations."""
    stages = "_".join(
        f"S{s}={getattr(args, f'lr_stage{s}')}_{getattr(args, f'epoch_stage{s}')}"
        f"_{getattr(args, f'decay_begin_epoch_stage{s}')}" for s in (1, 2, 3))
    name = f"{args.data_name}_{args.scale_factor}_{stages}"
    if args.method != "udaln":
        name = f"{args.method}_{name}"
    if args.stages != "123":
        name += f"_stages{args.stages}"
    return name


def _atomic_write(path, write):
    """Write through a temporary file in the same folder, then rename: an interrupted run never
    leaves a half-written file under the final name."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class RunFolder:
    """One training run's folder: opt.txt, precision.txt, <module>.pth, My_Out.mat, metrics.json."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def create(cls, args):
        """A new folder under ``args.checkpoints_dir``; an earlier run is never overwritten: its name
        gets a suffix _2, _3, ... unless ``args.overwrite``."""
        base = os.path.join(args.checkpoints_dir, run_folder_name(args))
        path, n = base, 1
        while os.path.exists(path) and not args.overwrite:
            n += 1
            path = f"{base}_{n}"
        if path != base:
            log.info("%s exists; writing this run to %s (use --overwrite to reuse it)", base, path)
        os.makedirs(path, exist_ok=True)
        folder = cls(path)
        if args.overwrite:  # the earlier run's results must not pass for this run's
            for name in os.listdir(path):
                if name in ("opt.txt", "precision.txt", "metrics.json", "My_Out.mat") or name.endswith(".pth"):
                    os.remove(folder.file(name))
        return folder

    def file(self, name):
        return os.path.join(self.path, name)

    def write_options(self, args):
        """opt.txt in the original format: every option, sorted, one per line."""
        lines = ["----------------- Options ---------------"]
        lines += ["{:>25}: {:<30}".format(str(k), str(v)) for k, v in sorted(vars(args).items())]
        lines.append("----------------- End -------------------")
        text = "\n".join(lines) + "\n"
        _atomic_write(self.file("opt.txt"), lambda f: f.write(text.encode()))
        return text

    def append_precision(self, message):
        """precision.txt is a log: stage results are appended as they are reached, as in the original."""
        with open(self.file("precision.txt"), "a") as f:
            f.write(f"{message}\n")

    def save_module(self, name, module):
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        _atomic_write(self.file(f"{name}.pth"), lambda f: torch.save(state, f))

    def save_output(self, cube):
        """My_Out.mat, key 'Out', H x W x C: loads with MATLAB ``load`` and ``scipy.io.loadmat``."""
        _atomic_write(self.file("My_Out.mat"), lambda f: scipy.io.savemat(f, {"Out": cube}))

    def save_metrics(self, metrics):
        text = json.dumps(metrics, indent=2, default=_json_default)
        _atomic_write(self.file("metrics.json"), lambda f: f.write(text.encode()))


def _json_default(value):
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")
