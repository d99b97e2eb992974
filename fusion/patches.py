"""Patch-sampled training for whole scenes (issue #12): a scene far larger than the papers' 240 x 240
crops (e.g. LR-HSI 1000 x 1000 x 166, HR-MSI 3000 x 3000 x 8) cannot be trained on whole every step, so
each optimiser step takes a batch of randomly placed, aligned patches instead.

Geometry (LR pixels unless said otherwise): the LR-HSI Y is 1 x C x h x w, the HR-MSI Z is 1 x Cm x H x W
with H = r h, W = r w. A patch has its top-left LR pixel at (i, j), 0 <= i <= h - P, 0 <= j <= w - P (no
padding: on odd sizes the last origin is h - P); its LR patch is Y[:, :, i:i+P, j:j+P] (P x P) and its HR
patch Z[:, :, r i:r (i+P), r j:r (j+P)] (rP x rP), exactly the LR patch's footprint. A batch of B patches
is a ``fusion.pair.PairView``: B x C x P x P and B x Cm x rP x rP. An image smaller than P in a direction
gives patches of its full extent there.

``choose_training_mode`` resolves --training_mode auto (see its thresholds below); ``PatchSampler`` draws
a stage's batches from a torch.Generator seeded from --seed and the stage number (its state is part of
the training checkpoint, so a resumed run draws the same patches); ``validation_patches`` is the fixed
subset the checks (fusion.monitor) run on in patch mode.
"""
import logging
from typing import NamedTuple

import numpy as np
import torch

from data_loader import DataError
from fusion.memory import available_memory, estimate_memory

log = logging.getLogger(__name__)

# --training_mode auto trains on patches when the HR-MSI has more pixels than this (1024 x 1024: about
# 18x the papers' 240 x 240 crops; whole-image training on it needs several GiB, e.g. about 3.9 GiB for
# UDALN with 8 MSI and 68 HSI bands, and a step takes seconds on a CPU) ...
PATCH_MODE_HR_PIXELS = 1024 * 1024
# ... or when whole-image training (fusion.memory.estimate_memory) needs more than this share of the memory
# available on the training device (fusion.memory.available_memory): the rest is left for the allocator's slack,
# the evaluation and other processes.
MEMORY_FRACTION = 0.5
# --patch_size 0 (automatic): patches of about this many HR pixels a side, P = this // r LR pixels. With
# the default 4 patches a step, a step's batch holds about as many HR pixels (16,384) as the papers'
# 120-145 pixel images (14,400-21,025), so a step costs about what a step of the papers' setting costs and the
# full schedule stays within reach of a CPU (benchmarks/scale.py).
AUTO_PATCH_HR_SIZE = 64
# A patch position is drawn only when at least this share of its LR pixels, and of its HR pixels, is
# valid (pair.lr_valid / pair.hr_valid): patches that are mostly no-data are skipped.
MIN_VALID_FRACTION = 0.5
# The checks during training run on this many fixed patches in patch mode (generator stream 0; the
# stages use streams 1, 2, 3).
VALIDATION_PATCHES = 8
VALIDATION_STREAM = 0
# PFS2C2 stage 3's fixed LR targets are computed over the whole LR grid this many LR rows at a time.
LR_TILE_ROWS = 256


def patch_mode(args):
    """True when the run trains on patches (``args.training_mode`` resolved to 'patches')."""
    return args.training_mode == "patches"


def auto_patch_size(scale):
    """The automatic --patch_size for ratio r: AUTO_PATCH_HR_SIZE // r LR pixels (at least 1)."""
    return max(1, AUTO_PATCH_HR_SIZE // scale)


def stream_seed(seed, stream):
    """The 64-bit seed of generator ``stream`` (VALIDATION_STREAM, or a stage number 1-3) of a run with
    --seed ``seed``: numpy's SeedSequence of (seed, stream), so the streams are unrelated."""
    return int(np.random.SeedSequence([seed % 2 ** 64, stream]).generate_state(1, dtype=np.uint64)[0])


def window_share(valid, size, step, count):
    """Share of True pixels in windows of a 2-D bool array ``valid``: the window (a, b) has ``size``
    (rows, columns) and its top-left pixel at (step a, step b), for a < count[0], b < count[1]. Returns
    a count[0] x count[1] float64 array, from one summed-area table (no loop over windows)."""
    table = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(valid, axis=0, dtype=np.int64), axis=1, out=table[1:, 1:])
    top, left = step * np.arange(count[0]), step * np.arange(count[1])
    bottom, right = top + size[0], left + size[1]
    sums = (table[np.ix_(bottom, right)] - table[np.ix_(top, right)] - table[np.ix_(bottom, left)]
            + table[np.ix_(top, left)])
    return sums / (size[0] * size[1])


class PatchSampler:
    """Draws one training stage's batches of aligned patches of ``pair`` (a fusion.pair.Pair).

    ``patch_size``: P in LR pixels (capped at the image's h and w); ``count``: patches per batch (B);
    ``seed``, ``stream``: the generator's --seed and stream (the stage number). Each ``draw()`` returns a
    fusion.pair.PairView of B patches whose origins are uniform over the positions at least
    MIN_VALID_FRACTION valid on both grids; positions repeat across draws and may within one.

    Raises DataError when no position is valid enough, ValueError when Z is not r times Y's size.
    """

    def __init__(self, pair, patch_size, count, seed, stream):
        _, _, h, w = pair.Y.shape
        r = pair.scale
        if tuple(pair.Z.shape[2:]) != (r * h, r * w):
            raise ValueError(f"the HR-MSI is {tuple(pair.Z.shape[2:])} pixels, not r = {r} times the LR-HSI's "
                             f"{(h, w)}: patches need nested grids")
        self.pair, self.count = pair, count
        self.size = (min(patch_size, h), min(patch_size, w))
        self.grid = (h - self.size[0] + 1, w - self.size[1] + 1)  # origins per column, per row
        self.allowed = self._allowed_origins()
        self.positions = self.grid[0] * self.grid[1] if self.allowed is None else len(self.allowed)
        self.lr_weight, self.hr_weight = self._coverage_weights()
        self.seed = stream_seed(seed, stream)
        self.generator = torch.Generator()
        self.reset()

    def _coverage_weights(self):
        """Loss weights that make a batch's mean L1 an unbiased estimate of the whole image's: pixels near
        the borders lie in fewer patch positions than central ones (a corner pixel in one, a central one
        in P^2), so each pixel's L1 is weighted by 1 / (the positions covering it), scaled to a mean of 1
        over the covered pixels, times its valid mask. Returns (1 x 1 x h x w, 1 x 1 x rh x rw) float32
        tensors on the pair's device."""
        pair, r = self.pair, self.pair.scale
        origins = torch.zeros(self.grid[0] * self.grid[1])
        origins[slice(None) if self.allowed is None else self.allowed] = 1.0
        box = torch.ones(1, 1, *self.size)
        coverage = torch.nn.functional.conv2d(origins.view(1, 1, *self.grid), box,
                                              padding=(self.size[0] - 1, self.size[1] - 1))
        covered = coverage > 0
        weight = torch.where(covered, coverage.clamp(min=1).reciprocal(), torch.zeros(()))
        weight = weight / weight[covered].mean()
        device = pair.Y.device
        lr = weight.to(device) * (1.0 if pair.lr_mask is None else pair.lr_mask)
        hr = weight.repeat_interleave(r, dim=2).repeat_interleave(r, dim=3).to(device)
        hr = hr * (1.0 if pair.hr_mask is None else pair.hr_mask)
        return lr, hr

    def _allowed_origins(self):
        """Flat indices (i grid[1] + j) of the positions valid enough, int64; None when every one is."""
        share = None
        for valid, factor in ((self.pair.lr_valid, 1), (self.pair.hr_valid, self.pair.scale)):
            if valid is None or bool(np.all(valid)):
                continue
            size = (self.size[0] * factor, self.size[1] * factor)
            ok = window_share(np.asarray(valid, dtype=bool), size, factor, self.grid) >= MIN_VALID_FRACTION
            share = ok if share is None else share & ok
        if share is None:
            return None
        allowed = np.flatnonzero(share)
        if allowed.size == 0:
            raise DataError(f"--patch_size {self.size[0]}: every {self.size[0]} x {self.size[1]} LR-pixel patch "
                            f"of the pair is less than {MIN_VALID_FRACTION:.0%} valid (no-data elsewhere); give "
                            "a smaller --patch_size, or --training_mode whole")
        return torch.from_numpy(allowed)

    def reset(self):
        """Back to the stage's first batch."""
        self.generator.manual_seed(self.seed)
        self.draws = 0
        self._before = None  # the generator's state before the latest draw

    def origins(self, count):
        """``count`` LR origins (rows, cols: int64 CPU tensors) drawn uniformly over the allowed positions."""
        flat = torch.randint(self.positions, (count,), generator=self.generator)
        if self.allowed is not None:
            flat = self.allowed[flat]
        return flat // self.grid[1], flat % self.grid[1]

    def draw(self):
        """The next batch (a fusion.pair.PairView of ``count`` patches): one per optimiser step."""
        self._before = self.generator.get_state()
        self.draws += 1
        rows, cols = self.origins(self.count)
        return self.pair.patches(rows, cols, *self.size, weights=(self.lr_weight, self.hr_weight))

    def distinct(self, count):
        """``count`` different positions (all when there are fewer), with the truths for the checks:
        a PairView from ``Pair.patches(..., truth=True)``. Draws from the generator."""
        flat = torch.randperm(self.positions, generator=self.generator)[:count]
        if self.allowed is not None:
            flat = self.allowed[flat]
        return self.pair.patches(flat // self.grid[1], flat % self.grid[1], *self.size, truth=True)

    def state_dict(self, completed):
        """The generator's state after ``completed`` batches, for the training checkpoint: the current
        one, or the one before the latest draw when that batch's step was not completed (a run stopped
        inside a step). Raises ValueError for any other count."""
        if completed == self.draws:
            state = self.generator.get_state()
        elif completed == self.draws - 1 and self._before is not None:
            state = self._before
        else:
            raise ValueError(f"the sampler has drawn {self.draws} batches; it cannot save its state after "
                             f"{completed}")
        return {"generator": state, "draws": completed}

    def load_state_dict(self, state):
        """Continue after the batches of a ``state_dict``; None: from the stage's first batch."""
        if state is None:
            self.reset()
            return
        self.generator.set_state(state["generator"])
        self.draws, self._before = state["draws"], None


def stage_sampler(args, pair, stage):
    """Stage ``stage``'s PatchSampler in patch mode (--patch_size, --patches_per_step, --seed), else None."""
    if not patch_mode(args):
        return None
    return PatchSampler(pair, args.patch_size or auto_patch_size(pair.scale), args.patches_per_step, args.seed,
                        stage)


def validation_patches(args, pair, count=VALIDATION_PATCHES):
    """The fixed subset of ``count`` distinct patches the checks use in patch mode (a PairView with the
    truths; the same for every stage and after a resume), None in whole-image mode."""
    if not patch_mode(args):
        return None
    sampler = PatchSampler(pair, args.patch_size or auto_patch_size(pair.scale), count, args.seed,
                           VALIDATION_STREAM)
    return sampler.distinct(count)


def by_lr_rows(module, image, factor, rows=LR_TILE_ROWS, context=None):
    """``module(image)`` for a module that maps each LR pixel's window on its own (SpaDnet with ``factor``
    r, SpeDnet with 1), computed ``rows`` LR rows at a time: the same result, with the temporaries of one
    band of rows only. ``image``: 1 x c x (factor h) x W -> 1 x c' x h x w'. ``context``: the LR rows
    above and below that a window reads (SpaDnet.context_rows, for a PSF larger than r; default: the
    module's ``context_rows``, else 0): each band is computed with that many more rows on each side
    inside the image, which are then dropped, so the module's edge padding acts at the image's borders
    only. A module marked ``whole_image`` (its output depends on whole-image statistics) runs on the
    whole image."""
    if getattr(module, "whole_image", False):
        return module(image)
    context = getattr(module, "context_rows", 0) if context is None else context
    height = image.shape[2] // factor
    parts = []
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        first, last = max(top - context, 0), min(bottom + context, height)
        part = module(image[:, :, first * factor:last * factor])
        parts.append(part[:, :, top - first:part.shape[2] - (last - bottom)])
    return torch.cat(parts, dim=2)


class TrainingMode(NamedTuple):
    """The training mode chosen for a pair: ``mode`` 'whole' or 'patches', ``patch_size`` the patch side
    P in LR pixels in patch mode (the option as given in whole-image mode), ``batch_pixels`` the HR pixels
    of one step's batch, B (r P)^2, in patch mode (for fusion.memory.check_memory), else None."""
    mode: str
    patch_size: int
    batch_pixels: int | None


def choose_training_mode(args, pair):
    """The ``TrainingMode`` of ``pair`` under the options ``args`` (--training_mode, --patch_size,
    --patches_per_step, --method, --device), logged with the reason. The caller records it in the run's
    options (config.RunOptions), so that opt.txt, the run folder's name and a resumed run all see the mode
    this run trained in.

    'auto' trains on patches when the HR-MSI has more than PATCH_MODE_HR_PIXELS pixels, or when
    whole-image training (estimate_memory) needs more than MEMORY_FRACTION of the training device's
    available memory (available_memory), unless a batch of patches would be as large as the image;
    --patch_size > 0 alone means patches.
    """
    _, c, h, w = pair.Y.shape
    _, cm, height, width = pair.Z.shape
    r = pair.scale
    size = args.patch_size or auto_patch_size(r)
    batch = args.patches_per_step * r * r * min(size, h) * min(size, w)
    mode = args.training_mode
    if mode == "whole":
        reason = "--training_mode whole"
    elif mode == "patches":
        reason = "--training_mode patches"
    elif args.patch_size:
        mode, reason = "patches", f"--patch_size {args.patch_size} given"
    else:
        need = estimate_memory(args.method, height, width, c, cm, r)[0]
        available = available_memory(torch.device(args.device))
        if batch >= height * width:
            mode, reason = "whole", f"a batch of {args.patches_per_step} patches would be as large as the image"
        elif height * width > PATCH_MODE_HR_PIXELS:
            mode, reason = "patches", (f"the HR-MSI has {height} x {width} pixels, more than "
                                       f"{PATCH_MODE_HR_PIXELS} (fusion.patches.PATCH_MODE_HR_PIXELS)")
        elif available is not None and need > MEMORY_FRACTION * available:
            mode, reason = "patches", (f"whole-image training needs about {need / 2 ** 30:.2f} GiB, more than "
                                       f"{MEMORY_FRACTION:.0%} of the {available / 2 ** 30:.2f} GiB available on "
                                       f"{args.device}")
        else:
            mode, reason = "whole", (f"the HR-MSI ({height} x {width} pixels) and the memory whole-image training "
                                     f"needs (about {need / 2 ** 30:.2f} GiB) are within the limits")
    if mode == "whole":
        log.info("training on the whole image (%s)", reason)
        return TrainingMode("whole", args.patch_size, None)
    log.info("training on patches (%s): %d patches of %d x %d LR pixels (%d x %d HR pixels) per step",
             reason, args.patches_per_step, min(size, h), min(size, w), r * min(size, h), r * min(size, w))
    return TrainingMode("patches", size, batch)
