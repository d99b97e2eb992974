"""The fused image's output files in the input's units and georeferencing, and its scores: against the
reference when there is one, and without one (consistency with the inputs, QNR).

``fuse_and_write`` does both for a run folder. A fused cube of up to STREAM_OUTPUT_BYTES (the papers'
sizes) is computed whole, as X_hat = nets.fuse(Z, Y), scored with ``evaluation.evaluate`` / ``qnr`` and
written as My_Out.mat (MATLAB v5, fusion.run_folder.RunFolder.save_output), plus My_Out.tif or My_Out.hdr for a
georeferenced pair. A larger one (a whole satellite scene) is never held: it is computed tile by tile
(``fusion.tiling``), each tile written to My_Out.tif (GeoTIFF pair, by windows) or My_Out.mat (MATLAB
v7.3, tile by tile) and fed to the streamed metrics (``evaluation.StreamingMetrics``, ``StreamingQNR``),
and only a subsampled colour composite is kept for quicklook.png (docs/whole_scenes.md,
"Whole scenes: tiled inference and output").

Numpy cubes are H x W x C, tensors 1 x C x H x W; X_hat is in the scaled units of training until it
is written (then in the LR-HSI's units, ``in_input_units``).
"""
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from evaluation import QNR_BLOCK, SSIM_HALO, ConstantBands, NoValidBlock, StreamingMetrics, StreamingQNR, evaluate, qnr
from fusion.memory import STREAM_OUTPUT_BYTES
from fusion.pair import hwc
from fusion.tiling import TILE_MEMORY_BYTES, TiledForward, network_halo
from imagery.quicklook import CompositeCollector
from imagery.writers import GEOTIFF_BLOCK, GeoTIFFWriter, Mat73Writer, write_envi, write_geotiff

NO_REFERENCE_METRICS = ("PSNR", "SAM", "ERGAS")
QNR_BLOCKS = (QNR_BLOCK, QNR_BLOCK // 2, QNR_BLOCK // 4)

log = logging.getLogger(__name__)


@dataclass
class Fused:
    """What ``fuse_and_write`` gives back: the metrics against the reference (``final``, None without
    one), the quality without a reference (``quality``, None when not asked), and the fused image for
    the quick-look (``image``: X_hat H x W x C scaled, or a CompositeCollector of a streamed one)."""
    final: dict
    quality: dict
    image: object


def streams(pair):
    """True when ``pair``'s fused cube (H x W x C float32) is larger than STREAM_OUTPUT_BYTES and is
    therefore computed, scored and written tile by tile."""
    height, width = pair.Z.shape[2:]
    return height * width * pair.hsi_channels * 4 > STREAM_OUTPUT_BYTES


def output_nodata(pair):
    """The value the output holds where the HR pixel has no data: the LR-HSI's no-data value for a real
    pair, NaN otherwise."""
    return pair.source.nodata if pair.source is not None else np.nan


def to_units(x, factor, valid=None, nodata=np.nan):
    """X_hat (H x W x C, scaled) as a new float32 array multiplied by ``factor`` (the scaling factor
    of imagery.radiometry), holding ``nodata`` where ``valid`` (H x W bool) is False."""
    out = x.astype(np.float32) * np.float32(factor)
    if valid is not None and not valid.all():
        out[~valid] = nodata
    return out


def in_input_units(pair, x):
    """X_hat (H x W x C, scaled) as a float32 array in the LR-HSI's (or reference's) units, holding the
    no-data value where the HR pixel has no data."""
    return to_units(x, pair.hsi_factor, pair.out_valid, output_nodata(pair))


@torch.inference_mode()
def fuse_and_write(run, pair, nets, factor, fill_nodata=True, no_reference=True, composite=True, side=None,
                   memory=TILE_MEMORY_BYTES):
    """X_hat = nets.fuse(Z, Y) of ``pair`` (after ``nets.prepare``), written to ``run`` (a
    fusion.run_folder.RunFolder) in the input's units (multiplied by ``factor``; with ``fill_nodata`` the
    no-data value where the HR-MSI has none) and scored; returns a ``Fused``.

    Up to STREAM_OUTPUT_BYTES (``streams``) the image is computed whole and the files and numbers are
    those of every earlier version: My_Out.mat (MATLAB v5, key Out) plus My_Out.tif / My_Out.hdr for a
    pair whose HR-MSI is a GeoTIFF / ENVI file (``write_georeferenced``), the reference metrics of
    ``evaluate`` and ``no_reference_quality``. Above it the image is computed tile by tile (side
    ``side`` pixels, else chosen from ``memory`` bytes) and never held: My_Out.tif written by windows
    for a GeoTIFF pair, else My_Out.mat as MATLAB v7.3 (an ENVI pair gets no My_Out.hdr), the same
    metrics from the streamed ones (equal to 1e-9 relative), and the quick-look's composite collected
    per tile (``composite``). ``no_reference``: also the quality without a reference (the
    reduced-resolution protocol's run does without it).
    """
    nets.prepare(pair)
    if not streams(pair):
        x_hat = nets.fuse(pair.Z, pair.Y)
        quality = no_reference_quality(pair, nets, x_hat) if no_reference else None
        x = hwc(x_hat)
        final = evaluate(pair.X, x, pair.scale, mask=pair.out_valid) if pair.has_reference else None
        x_out = to_units(x, factor, pair.out_valid if fill_nodata else None, output_nodata(pair))
        run.save_output(x_out)
        write_georeferenced(run, pair, x_out)
        return Fused(final, quality, x)
    return _StreamedFusion(run, pair, nets, factor, fill_nodata, no_reference, composite, side, memory).run()


@torch.inference_mode()
def no_reference_quality(pair, nets, x_hat):
    """Quality without a reference. Consistency (the paper's Fig. 2 check): the fused image X_hat
    (1 x C x H x W, scaled) degraded again by the learned networks against the inputs, SpaDnet(X_hat)
    vs Y and SpeDnet(X_hat) vs Z (PSNR dB, SAM degrees, ERGAS); and the QNR indices (evaluation.qnr),
    with the HR-MSI brought to the LR grid by the learned PSF."""
    r = pair.scale
    x, y, z = hwc(x_hat), hwc(pair.Y), hwc(pair.Z)
    lrhsi = evaluate(y, hwc(nets.spa(x_hat)), r, ssim=False, mask=pair.lr_valid)
    hrmsi = evaluate(z, hwc(nets.to_msi(x_hat)), r, ssim=False, mask=pair.out_valid)
    quality = {"lrhsi_consistency": {k: lrhsi[k] for k in NO_REFERENCE_METRICS},
               "hrmsi_consistency": {k: hrmsi[k] for k in NO_REFERENCE_METRICS}}
    z_lr = hwc(nets.spa(pair.Z))
    # QNR's blocks (32 HR pixels, Alparone's toolbox) must fit in the valid part of small images.
    for block in QNR_BLOCKS:
        try:
            return {**quality, **qnr(x, y, z, z_lr, block=block, mask=pair.out_valid, lr_mask=pair.lr_valid),
                    "QNR_block": block}
        except NoValidBlock:
            continue
    _no_qnr_warning()
    return quality


def _no_qnr_warning():
    log.warning("QNR not computed: no %d x %d block of the image is entirely valid", QNR_BLOCKS[-1], QNR_BLOCKS[-1])


def _has_whole_block(valid, shape, block):
    """True when a ``block`` x ``block`` block from the top-left grid lies in the image (shape) and,
    with ``valid`` (bool, None: all valid), is entirely valid: the blocks ``evaluation.uiqi`` uses."""
    nh, nw = shape[0] // block, shape[1] // block
    if nh == 0 or nw == 0:
        return False
    return valid is None or bool(valid[:nh * block, :nw * block].reshape(nh, block, nw, block).all(axis=(1, 3)).any())


def streaming_qnr(pair):
    """The StreamingQNR for ``pair``'s fused image with the first block of QNR_BLOCKS that has a whole
    valid block on both grids (as ``no_reference_quality`` falls back), or None (a warning) when none has."""
    shape, lr_shape = tuple(pair.Z.shape[2:]), tuple(pair.Y.shape[2:])
    for block in QNR_BLOCKS:
        sq = StreamingQNR(shape, pair.scale, block)
        if (_has_whole_block(pair.out_valid, shape, block)
                and _has_whole_block(pair.lr_valid, lr_shape, sq.block_lr)):
            return sq
    _no_qnr_warning()
    return None


def _part(array, rows, cols):
    """array[rows, cols], or None for no array (a mask meaning "all valid")."""
    return None if array is None else array[rows, cols]


class _StreamedFusion:
    """``fuse_and_write`` for a fused cube too large to hold (see there): one pass over the reference
    and inputs for their constant bands (evaluation.ConstantBands), then one pass of tiled inference
    that writes, scores and collects each tile. Tiles are aligned to lcm(r, 16) (SpaDnet's blocks and
    the GeoTIFF's tiles) and come in cells of whole QNR blocks of both grids."""

    def __init__(self, run, pair, nets, factor, fill_nodata, no_reference, composite, side, memory):
        self.folder, self.pair, self.nets, self.factor = run, pair, nets, factor
        self.fill_nodata, self.no_reference = fill_nodata, no_reference
        self.height, self.width = pair.Z.shape[2:]
        self.bands = pair.hsi_channels
        r = pair.scale
        self.qnr = streaming_qnr(pair) if no_reference else None
        align = math.lcm(r, 16)
        group = None if self.qnr is None else math.lcm(self.qnr.step, align)
        # Exact output around each tile: SSIM's window and GCE's 3 x 3 convolution (in SpeDnet(X_hat)) reach it.
        context = max(SSIM_HALO if pair.has_reference else 0, network_halo(nets.gce) if no_reference else 0)
        self.tiler = TiledForward(nets.inverse_network(), pair.Z, align=align, context=context, side=side,
                                  memory=memory, group=group, lr_input=pair.Y if nets.reads_lr_hsi else None)
        self.cell = self.tiler.side if group is None else max(self.tiler.side, group)
        self.composite = (CompositeCollector(self.height, self.width, self.bands, pair.wavelengths)
                          if composite else None)

    def _summaries(self):
        """The first pass: the reference's and the inputs' ConstantBands summaries, tile by tile."""
        pair, r = self.pair, self.pair.scale
        reference = ConstantBands() if pair.has_reference else None
        lr, hr = (ConstantBands(), ConstantBands()) if self.no_reference else (None, None)
        for tile in self.tiler.tiles:
            valid = _part(pair.out_valid, tile.rows, tile.cols)
            if reference is not None:
                reference.update(pair.X[tile.rows, tile.cols], valid)
            if self.no_reference:
                lr_rows, lr_cols = tile.lr(r)
                lr.update(hwc(pair.Y[:, :, lr_rows, lr_cols]), _part(pair.lr_valid, lr_rows, lr_cols))
                hr.update(hwc(pair.Z[:, :, tile.rows, tile.cols]), valid)
        return [None if s is None else s.result() for s in (reference, lr, hr)]

    def _writer(self):
        """My_Out.tif by windows for a pair whose HR-MSI is georeferenced (``georeferenced_format``), else
        My_Out.mat (MATLAB v7.3)."""
        real, shape, side = self.pair.source, (self.height, self.width, self.bands), self.tiler.side
        if georeferenced_format(real) == "geotiff":
            return GeoTIFFWriter(self.folder.file("My_Out.tif"), *shape, real.msi.crs, real.msi.transform,
                                 nodata=real.nodata, band_names=_band_names(real), wavelengths=real.wavelengths,
                                 fwhm=real.fwhm, block=side if side % 16 == 0 else GEOTIFF_BLOCK)
        if georeferenced_format(real) == "envi":
            log.info("the fused scene is written as My_Out.mat (MATLAB v7.3) only: no ENVI copy of a streamed scene")
        return Mat73Writer(self.folder.file("My_Out.mat"), "Out", shape, chunk=side)

    def run(self):
        """Both passes; returns the Fused (its image the CompositeCollector, or None)."""
        pair, nets, r = self.pair, self.nets, self.pair.scale
        log.info("fusing %d x %d x %d pixels in %d tiles of %d x %d", self.height, self.width, self.bands,
                 len(self.tiler), self.tiler.side, self.tiler.side)
        reference, lr_summary, hr_summary = self._summaries()
        final = None if reference is None else StreamingMetrics(r, ssim=True, constant=reference)
        lrhsi = None if lr_summary is None else StreamingMetrics(r, constant=lr_summary)
        hrmsi = None if hr_summary is None else StreamingMetrics(r, constant=hr_summary)
        buffer = None
        if self.qnr is not None and self.cell > self.tiler.side:
            buffer = np.empty((min(self.cell, self.height), min(self.cell, self.width), self.bands), dtype=np.float32)
        with self._writer() as out:
            for part in self.tiler:
                tile, outer = part.tile, part.outer
                x = hwc(part.core)
                valid = _part(pair.out_valid, tile.rows, tile.cols)
                out.write(tile.top, tile.left, to_units(x, self.factor, valid if self.fill_nodata else None,
                                                        output_nodata(pair)))
                if final is not None:
                    final.update(pair.X[outer.rows, outer.cols], hwc(part.x),
                                 _part(pair.out_valid, outer.rows, outer.cols), core=tile.within(outer))
                if self.no_reference:
                    lr_rows, lr_cols = tile.lr(r)
                    lrhsi.update(hwc(pair.Y[:, :, lr_rows, lr_cols]), hwc(nets.spa(part.core)),
                                 _part(pair.lr_valid, lr_rows, lr_cols))
                    hrmsi.update(hwc(pair.Z[:, :, tile.rows, tile.cols]), hwc(part.crop(nets.to_msi(part.x))), valid)
                if self.qnr is not None:
                    self._add_to_qnr(part, x, buffer)
                if self.composite is not None:
                    self.composite.add(tile.top, tile.left, x)
        quality = None
        if self.no_reference:
            lr_scores, hr_scores = lrhsi.result(), hrmsi.result()
            quality = {"lrhsi_consistency": {k: lr_scores[k] for k in NO_REFERENCE_METRICS},
                       "hrmsi_consistency": {k: hr_scores[k] for k in NO_REFERENCE_METRICS}}
            if self.qnr is not None:
                quality.update(self.qnr.result(), QNR_block=self.qnr.block)
        return Fused(None if final is None else final.result(), quality, self.composite)

    def _add_to_qnr(self, part, x, buffer):
        """Feed the QNR a whole cell: the tile itself, or the cell ``buffer`` once its last tile is in."""
        tile, cell = part.tile, part.cell
        if buffer is not None:
            top, left = tile.top % self.cell, tile.left % self.cell
            buffer[top:top + x.shape[0], left:left + x.shape[1]] = x
            if cell is None:
                return
            x = buffer[:cell.shape[0], :cell.shape[1]]
        else:
            cell = tile
        pair, r = self.pair, self.pair.scale
        lr_rows, lr_cols = cell.lr(r)
        z = pair.Z[:, :, cell.rows, cell.cols]
        self.qnr.update(x, hwc(pair.Y[:, :, lr_rows, lr_cols]), hwc(z), hwc(self.nets.spa(z)), (cell.top, cell.left),
                        _part(pair.out_valid, cell.rows, cell.cols), _part(pair.lr_valid, lr_rows, lr_cols))


def _band_names(real):
    return None if real.wavelengths is None else [f"{w:.2f} nm" for w in real.wavelengths]


def georeferenced_format(real):
    """The georeferenced copy of the fused image a real pair gets (``real``: fusion.pair's source of the pair,
    None for a simulated one): 'envi' when the HR-MSI came as ENVI, 'geotiff' when it came as a GeoTIFF or
    carries a CRS (a product such as a Sentinel-2 .SAFE folder or a PRISMA panchromatic image), else None."""
    if real is None:
        return None
    if real.msi.fmt == "envi":
        return "envi"
    return "geotiff" if real.msi.fmt == "geotiff" or real.msi.crs is not None else None


def write_georeferenced(run, pair, x_out):
    """My_Out.tif (GeoTIFF) or My_Out.hdr (ENVI) as ``georeferenced_format`` decides, with the HSI band centres and
    the HR-MSI's CRS and transform (those of the grid fused on, for an aligned pair); the run folder's
    My_Out.mat is written for every run."""
    real = pair.source
    fmt = georeferenced_format(real)
    if fmt == "geotiff":
        path = run.file("My_Out.tif")
        write_geotiff(path, x_out, real.msi.crs, real.msi.transform, nodata=real.nodata, band_names=_band_names(real),
                      wavelengths=real.wavelengths, fwhm=real.fwhm)
    elif fmt == "envi":
        path = run.file("My_Out.hdr")
        write_envi(path, x_out, wavelengths=real.wavelengths, fwhm=real.fwhm, nodata=real.nodata, crs=real.msi.crs,
                   transform=real.msi.transform)
    else:
        return None
    return path
