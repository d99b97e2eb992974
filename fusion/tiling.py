"""Tiled inference of a method's inverse network on a whole scene: X_hat = f(Z) computed tile by tile,
equal to the whole-image forward (docs/whole_scenes.md).

Tensors are 1 x C x H x W (channels first); tiles are rectangles of HR pixels, half-open
[top, bottom) x [left, right). Two things make a tile's output differ from the whole image's, and both
are handled here:

- Spatial context. A k x k layer (SCFConv, a 3 x 3 Conv2d) sees (k - 1) / 2 pixels around each output
  pixel, so each tile is computed from the input grown by a halo: the sum of those radii over the
  network's layers (``network_halo``, derived from the modules' ``kernel_size``; 0 for UDALN's 1x1
  SpeUnet), and the halo's output is dropped. At the image's borders nothing is added, so the
  layers' padding acts exactly as on the whole image.
- Global pooling. PFS2C2's spectral attention and UDS2C2's SCFConv compute their weights from the spatial
  mean of their input over the whole image, which a tile does not see. The modules of those types
  (``GLOBAL_POOLING_TYPES``) are found in the network; their whole-image input means are computed
  first, one pass over the tiles per module in forward order (each pass with the earlier modules'
  means fixed, stopping at the module measured), and the tiled forward then runs with every mean
  fixed. Any other spatial mean met during a tiled forward raises ``TilingError`` rather than give a
  silently wrong image.

Tiles are square, of a side chosen from a memory budget (``TILE_MEMORY_BYTES`` for one tile's
activations; ``side`` or ``memory`` override it) and a multiple of ``align`` (the scale factor r,
so SpaDnet's stride-r blocks of a tile are the image's, or a multiple of the QNR block).
"""
import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from model.scfconv import SCFConv
from model.spectral_upsample import SpectralAttention

# Memory for one tile's activations (bytes): 256 MiB keeps tiled inference of any scene far under a
# few GB while a tile (about 200 x 200 pixels for 166 bands) is large enough that the halo and the
# per-tile overhead stay small.
TILE_MEMORY_BYTES = 256 * 2 ** 20
# Per-pixel copies of the widest layer (float32) held while a tile is processed: the layer's input,
# output and activation, the convolution's workspace, and downstream the output in the input's units
# and the metrics' float64 copies (two values each).
ACTIVATION_COPIES = 8
# Modules whose forward uses the spatial mean of their input over the whole image.
GLOBAL_POOLING_TYPES = (SpectralAttention, SCFConv)


class TilingError(ValueError):
    """The network cannot be tiled exactly (a strided layer, a global pooling outside
    GLOBAL_POOLING_TYPES) or the tiling options are invalid."""


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def network_halo(network):
    """The halo (HR pixels, one side) a tile needs so that its output equals the whole image's: the
    sum over the network's modules that have a ``kernel_size`` (Conv2d, SCFConv, ...) of their reach
    ceil(dilation (k - 1) / 2), the largest over the two axes; 0 for a network of 1x1 layers or for
    None. Summing over all layers assumes they are applied one after the other (an upper bound
    otherwise); a module's own ``tile_halo`` attribute when it has one. Raises TilingError for a layer with
    a stride other than 1, whose output grid is not the input's (tiles could not be put together)."""
    if network is None:
        return 0
    if hasattr(network, "tile_halo"):  # a module that states its own (methods.recommended.HyperSharpening)
        return network.tile_halo
    halo = 0
    for name, module in network.named_modules():
        size = getattr(module, "kernel_size", None)
        if size is None:
            continue
        if _pair(getattr(module, "stride", 1)) != (1, 1):
            raise TilingError(f"layer {name or type(module).__name__} has stride {module.stride}: tiled inference "
                              "needs stride-1 layers (the output on the input's grid)")
        dilation = _pair(getattr(module, "dilation", 1))
        halo += max((d * (k - 1) + 1) // 2 for k, d in zip(_pair(size), dilation))
    return halo


def global_pooling_modules(network):
    """The modules of ``network`` of GLOBAL_POOLING_TYPES (registration order), whose forward takes the
    spatial mean of their input over the whole image."""
    return [m for m in network.modules() if isinstance(m, GLOBAL_POOLING_TYPES)]


@dataclass(frozen=True)
class Tile:
    """A rectangle of HR pixels: rows [top, bottom), columns [left, right)."""
    top: int
    left: int
    bottom: int
    right: int

    @property
    def rows(self):
        return slice(self.top, self.bottom)

    @property
    def cols(self):
        return slice(self.left, self.right)

    @property
    def shape(self):
        return self.bottom - self.top, self.right - self.left

    def lr(self, scale):
        """(rows, cols) slices of the LR pixels whose r x r blocks this tile holds (r = ``scale``).
        Raises TilingError when the tile's edges are not on the LR grid."""
        edges = (self.top, self.left, self.bottom, self.right)
        if any(e % scale for e in edges):
            raise TilingError(f"tile {edges} is not aligned to the scale factor {scale}")
        return slice(self.top // scale, self.bottom // scale), slice(self.left // scale, self.right // scale)

    def grown(self, margin, height, width):
        """This tile grown by ``margin`` pixels on each side, clipped to a height x width image."""
        return Tile(max(self.top - margin, 0), max(self.left - margin, 0), min(self.bottom + margin, height),
                    min(self.right + margin, width))

    def within(self, outer):
        """(rows, cols) slices of this tile inside the tile ``outer`` that contains it."""
        return (slice(self.top - outer.top, self.bottom - outer.top),
                slice(self.left - outer.left, self.right - outer.left))


def tile_grid(height, width, side, group=None):
    """Square tiles of ``side`` pixels covering a height x width image from its top-left corner; the
    last row and column of tiles end at the image's edge (smaller). Without ``group`` the tiles come
    row by row. With ``group`` (pixels, a multiple of ``side``, or a divisor of it) the image is cut
    into cells of max(side, group) pixels, and the tiles come cell by cell (row by row within a cell):
    a consumer that needs a whole cell at once holds one cell, not a row of them. Returns a list of
    (tile, cell) pairs, cell being the Tile of the cell that the tile completes, else None. Raises
    TilingError for a side below 1 or a group that neither divides nor is divided by the side."""
    if side < 1:
        raise TilingError(f"the tile side must be at least 1 pixel; got {side}")
    if group is not None and (group < 1 or (group % side and side % group)):
        raise TilingError(f"the group of {group} pixels must be a multiple or a divisor of the tile side {side}")
    cell = side if group is None else max(side, group)
    tiles = []
    for top, left in itertools.product(range(0, height, cell), range(0, width, cell)):
        area = Tile(top, left, min(top + cell, height), min(left + cell, width))
        inner = [Tile(t, l, min(t + side, area.bottom), min(l + side, area.right))
                 for t in range(top, area.bottom, side) for l in range(left, area.right, side)]
        tiles += [(tile, area if i == len(inner) - 1 else None) for i, tile in enumerate(inner)]
    if group is None:  # cells are the tiles themselves: row by row
        return [(tile, None) for tile, _ in tiles]
    return tiles


def widest_layer(network):
    """The largest number of channels in or out of any layer of ``network`` (modules with
    in_channels / out_channels)."""
    widths = [getattr(m, attr) for m in network.modules() for attr in ("in_channels", "out_channels")
              if isinstance(getattr(m, attr, None), int)]
    if not widths:
        raise TilingError(f"{type(network).__name__} has no layer with in_channels/out_channels to size tiles from")
    return max(widths)


def choose_tile_side(network, height, width, align=1, margin=0, memory=TILE_MEMORY_BYTES, group=None):
    """The side (HR pixels) of square tiles whose activations, halo ``margin`` included, fit in
    ``memory`` bytes: ACTIVATION_COPIES float32 copies of the widest layer per pixel. A multiple of
    ``align`` (at least ``align``), no larger than the image needs; with ``group`` (a multiple of
    ``align``) also a multiple of ``group`` or a divisor of it (see ``tile_grid``). Raises TilingError
    for a group that is not a multiple of ``align``."""
    if group is not None and group % align:
        raise TilingError(f"the group of {group} pixels is not a multiple of the alignment {align}")
    per_pixel = 4 * ACTIVATION_COPIES * widest_layer(network)
    fits = max(math.isqrt(max(int(memory) // per_pixel, 1)) - 2 * margin, 1)
    needed = -(-max(height, width) // align) * align
    if group is None:
        return min(max(fits // align, 1) * align, needed)
    if fits >= group:
        return min(fits // group * group, -(-max(height, width) // group) * group)
    divisors = [d for d in range(align, group + 1, align) if group % d == 0 and d <= fits]
    return divisors[-1] if divisors else align


class _Collected(Exception):
    """Stops a forward once the pooling module measured in this pass has its input."""


def _spatial_mean(func, args, kwargs):
    """(tensor, keepdim) when the call ``func(*args, **kwargs)`` is a mean over the last two axes of a
    4-D tensor (Tensor.mean, torch.mean, adaptive average pooling to 1 x 1), else None."""
    if func is F.adaptive_avg_pool2d:
        size = args[1] if len(args) > 1 else kwargs.get("output_size")
        return (args[0], True) if _pair(size) == (1, 1) else None
    if func not in (torch.Tensor.mean, torch.mean) or not args or not isinstance(args[0], torch.Tensor):
        return None
    x = args[0]
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    if x.dim() != 4 or dims is None:
        return None
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    if sorted(d % 4 for d in dims) != [2, 3]:
        return None
    return x, bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))


class _FixedPooling(TorchFunctionMode):
    """While active: the spatial mean that the pooling module being run takes of its input returns the
    whole-image mean set by ``_pooling_hooks``; any other spatial mean raises TilingError."""

    def __init__(self):
        super().__init__()
        self.expected = None  # (the pooling module's input, its whole-image mean 1 x C)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        found = _spatial_mean(func, args, kwargs)
        if found is None:
            return func(*args, **kwargs)
        x, keepdim = found
        if self.expected is None or x is not self.expected[0]:
            raise TilingError("the network takes a spatial mean outside the known global pooling modules "
                              f"({', '.join(t.__name__ for t in GLOBAL_POOLING_TYPES)}): a tile's mean is not "
                              "the image's; add the module's type to fusion.tiling.GLOBAL_POOLING_TYPES")
        mean = self.expected[1]
        return mean[:, :, None, None] if keepdim else mean


@contextmanager
def _pooling_hooks(modules, means, collect=None):
    """Hooks on the pooling ``modules`` for one forward: the i-th pooling call in forward order gets
    ``means[i]``; with ``collect = (i, rows, cols, totals)`` the i-th call's input, cropped to
    (rows, cols), is summed over the pixels into ``totals`` (a list, float64 1 x C) and the forward
    stops (``_Collected``). Yields the function mode that fixes the means."""
    mode = _FixedPooling()
    calls = itertools.count()

    def enter(module, args):
        i = next(calls)
        x = args[0]
        if collect is not None and i == collect[0]:
            _, rows, cols, totals = collect
            totals.append(x[:, :, rows, cols].sum(dim=(2, 3), dtype=torch.float64))
            raise _Collected
        mode.expected = (x, means[i])

    def leave(module, args, output):
        mode.expected = None

    handles = [h for m in modules for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    try:
        yield mode
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class TileOutput:
    """The network's output around one tile: ``x`` (1 x C x h x w) is exact over ``outer``, the tile
    grown by the requested context and clipped to the image. ``cell``: with a ``group``, the cell
    (see ``tile_grid``) that this tile completes, else None."""
    tile: Tile
    outer: Tile
    x: torch.Tensor
    cell: Tile = None

    def crop(self, t):
        """A tensor over ``outer`` (1 x C' x h x w, e.g. a module applied to ``x``) cropped to the tile."""
        rows, cols = self.tile.within(self.outer)
        return t[:, :, rows, cols]

    @property
    def core(self):
        """The output over the tile itself, 1 x C x tile rows x tile columns."""
        return self.crop(self.x)


class TiledForward:
    """``network``(z) tile by tile, equal to the whole-image forward (to float32 rounding).

    network: a module mapping 1 x Cin x H x W to 1 x C x H x W with stride-1 layers (SpeUnet, SpeUp,
    UDS2C2's SpeUnet with SCFConv); z: its input, 1 x Cin x H x W. align: tile sides and origins are
    multiples of it (the scale factor r, or a multiple of r). context: the output is also made exact
    ``context`` pixels around each tile (for a consumer with spatial context of its own: GCE's
    3 x 3 convolution, SSIM's window). side: the tile side in pixels (a multiple of ``align``), else
    chosen by ``choose_tile_side`` from ``memory`` bytes. group: tiles come cell by cell (``tile_grid``)
    for a consumer that needs cells of ``group`` pixels whole (the QNR's blocks). lr_input: for a network
    that also reads the LR-HSI (``network(z, y)``, methods.recommended), Y, 1 x C x h x w, z's LR grid at an
    integer ratio r = H / h that divides ``align``; each tile's input region is then widened to the LR grid
    and ``y`` is its LR part.

    Iterating yields a ``TileOutput`` per tile; the whole-image means of the global pooling modules
    are computed on first use (``global_means``). Runs under torch.inference_mode. Raises TilingError
    (a ValueError) for a network that cannot be tiled, a side that is not a positive multiple of
    ``align``, or a group that fits neither.
    """

    def __init__(self, network, z, align=1, context=0, side=None, memory=TILE_MEMORY_BYTES, group=None,
                 lr_input=None):
        if z.dim() != 4 or z.shape[0] != 1:
            raise TilingError(f"z must be one image, 1 x C x H x W; got shape {tuple(z.shape)}")
        self.network, self.z, self.lr_input = network, z, lr_input
        self.height, self.width = z.shape[2:]
        self.halo, self.context = network_halo(network), context
        self.ratio = 1
        if lr_input is not None:
            self.ratio = self.height // lr_input.shape[2]
            if align % self.ratio or (self.height, self.width) != tuple(s * self.ratio for s in lr_input.shape[2:]):
                raise TilingError(f"the LR input of {tuple(lr_input.shape[2:])} pixels is not the {tuple(z.shape[2:])}"
                                  f" image's LR grid at a ratio dividing the alignment {align}")
        self.pooling = global_pooling_modules(network)
        if side is None:
            side = choose_tile_side(network, self.height, self.width, align, self.halo + context, memory, group)
        elif side < 1 or side % align:
            raise TilingError(f"the tile side must be a positive multiple of {align}; got {side}")
        self.side = side
        self.grid = tile_grid(self.height, self.width, side, group)
        self.tiles = [tile for tile, _ in self.grid]
        self._means = None

    def _input(self, tile):
        """The tile grown by the context and the halo (to the LR grid with an LR input): the input region
        and the network's input there, (z,) or (z, y)."""
        margin = -(-(self.context + self.halo) // self.ratio) * self.ratio
        grown = tile.grown(margin, self.height, self.width)
        z = self.z[:, :, grown.rows, grown.cols]
        if self.lr_input is None:
            return grown, (z,)
        rows, cols = grown.lr(self.ratio)
        return grown, (z, self.lr_input[:, :, rows, cols])

    @torch.inference_mode()
    def global_means(self):
        """The whole-image spatial means of each global pooling module's input (1 x C tensors, forward
        order): pass k runs the tiles up to the k-th pooling module, with the earlier means fixed, and
        averages its input over the tiles' own pixels."""
        if self._means is None:
            means = []
            for k in range(len(self.pooling)):
                totals = []
                for tile in self.tiles:
                    grown, inputs = self._input(tile)
                    rows, cols = tile.within(grown)
                    try:
                        with _pooling_hooks(self.pooling, means, (k, rows, cols, totals)) as mode, mode:
                            self.network(*inputs)
                    except _Collected:
                        continue
                    break  # the forward ended before pooling call k: no module left to measure
                if len(totals) < len(self.tiles):
                    break
                means.append((sum(totals) / (self.height * self.width)).to(self.z.dtype))
            self._means = means
        return self._means

    @torch.inference_mode()
    def forward_tile(self, tile, cell=None):
        """The network's output around ``tile`` (a TileOutput, given ``cell``), with the whole-image
        means fixed."""
        means = self.global_means()
        grown, inputs = self._input(tile)
        z = inputs[0]
        outer = tile.grown(self.context, self.height, self.width)
        with _pooling_hooks(self.pooling, means) as mode, mode:
            x = self.network(*inputs)
        if x.shape[2:] != z.shape[2:]:
            raise TilingError(f"{type(self.network).__name__} maps {tuple(z.shape[2:])} pixels to "
                              f"{tuple(x.shape[2:])}: tiled inference needs an output on the input's grid")
        rows, cols = outer.within(grown)
        return TileOutput(tile, outer, x[:, :, rows, cols], cell)

    def __iter__(self):
        for tile, cell in self.grid:
            yield self.forward_tile(tile, cell)

    def __len__(self):
        return len(self.tiles)


@torch.inference_mode()
def forward_tiled(network, z, **options):
    """network(z) (or network(z, y) with ``lr_input`` y) computed tile by tile (``TiledForward``, same
    options) and put together: a 1 x C x H x W tensor equal to the whole image's forward to float32
    rounding. For images whose output fits in memory (tests, checks); whole scenes consume
    ``TiledForward``'s tiles one by one instead."""
    out = None
    for part in TiledForward(network, z, **options):
        if out is None:
            out = part.core.new_empty((1, part.core.shape[1], *z.shape[2:]))
        out[:, :, part.tile.rows, part.tile.cols] = part.core
    return out
