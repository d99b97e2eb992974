"""The papers' figures from fusion runs, drawn with matplotlib (Agg canvas, PNG).

- ``save_consistency_figure``: the UDALN paper's Fig. 2 (J. Li et al., "Deep Unsupervised Blind
  Hyperspectral and Multispectral Data Fusion", IEEE GRSL 19, 2022): the LR-HSI and the HR-MSI
  regenerated from the fused image by the learned degradations, next to the inputs, with the
  residuals magnified x40 (fig2_consistency.png in a run folder).
- ``save_comparison_figure``: the papers' Fig. 3 layout for one table: per method the fused image,
  its per-pixel SAM map and its per-pixel mean relative absolute error (MRAE) map, on one colour
  scale per row, the reference in the first column.
- ``save_error_maps_figure``: Fig. 3 for one run against its reference: the reference and the fused
  image, the per-pixel SAM map and the per-pixel RMSE-over-bands map with colour bars
  (fig3_error_maps.png in a run folder with a reference; ``error_maps`` computes the maps).
- ``save_degradation_figure``: the learned PSF next to the true one and the learned SRF of every
  MSI band over the true one (psf_srf.png).
- ``save_loss_curves``: the training loss of each stage (loss_curves.png), from metrics.json's
  "loss_history" ({"<stage>": {"epoch": [...], "loss": [...]}}, recorded by func.train_stage).
- ``save_run_figures``: psf_srf.png and loss_curves.png of a finished run folder, from its
  metrics.json alone.

Command line::

    python -m reproduce.figures RUN_FOLDER [RUN_FOLDER ...]
    python -m reproduce.figures --compare RUN_OR_FILE ... --reference FILE.mat [--out fig3.png]

Numpy cubes are H x W x C (rows, columns, bands). Colour composites use ``imagery.quicklook``'s band
choice (true colour from the wavelengths when they cover 470-640 nm, else bands spread over the
range) and its 2nd-98th percentile stretch, shared by every image of the same bands. Images larger
than 1000 pixels a side are shown (and their maps computed) on every k-th row and column only.
Every save_* function returns a ``Drawn``: the path and the arrays and numbers drawn. Arguments of
the wrong shape raise ValueError; files that cannot be used raise data_loader.DataError naming them.
"""
import argparse
import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from data_loader import DataError, crop_to_multiple, on_support
from evaluation import evaluate, pixel_rmse, spectral_angles
from func import _atomic_write
from imagery import quicklook as ql
from imagery.radiometry import invalid_pixels, power_of_ten_scale
from imagery.readers import read_image, read_wavelengths, row_blocks

log = logging.getLogger("fusion")

# The UDALN paper's Fig. 2 shows the residuals magnified 40 times.
RESIDUAL_GAIN = 40.0
# In the MRAE, a reference value of magnitude at most this fraction of the reference's largest counts as
# zero and is left out of its pixel's mean over bands (a pixel with no band left is undefined, grey).
MRAE_ZERO_FRACTION = 1e-3
# The shared colour scale of a row of SAM or MRAE maps ends at this percentile of all its maps' values,
# so that a few outliers do not flatten the rest to one colour.
MAP_SCALE_PERCENTILE = 99.0
DPI = 100
PANEL_INCHES = 4.0          # consistency and loss figures
COMPARISON_PANEL_INCHES = 3.0
COLOURBAR_INCHES = 1.0      # the comparison figure's column of colour bars
DEGRADATION_PANEL_INCHES = 3.0
SRF_COLUMNS = 4             # SRF panels per row in psf_srf.png
ERROR_COLOURMAP = "viridis"
RUN_FIGURES = ("psf_srf.png", "loss_curves.png")


@dataclass
class Drawn:
    """What a figure shows: ``path`` of the PNG, ``panels`` {row: {panel: array}} (the arrays as given
    to the display, before stretching and clipping), ``numbers`` {row: {name: value}} (the values in
    the titles), ``step``: every step-th row and column of the images is shown."""
    path: str
    panels: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)
    step: int = 1


# ----------------------------------------------------------------------------- helpers

def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _write(fig, path):
    """The PNG through a temporary file and a rename: ``path`` never holds a partial image."""
    path = os.path.abspath(os.fspath(path))
    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


def _cube(x, name, ndim_2_ok=False):
    a = np.asarray(x)
    if ndim_2_ok and a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty {'H x W or ' if ndim_2_ok else ''}H x W x C array; "
                         f"got shape {a.shape}")
    return a


def _same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the shape of {name_a}, {a.shape}; got {b.shape}")


def _mask(valid, shape, name):
    if valid is None:
        return None
    m = np.asarray(valid)
    if m.dtype != bool or m.shape != tuple(shape[:2]):
        raise ValueError(f"{name} must be an H x W = {shape[0]} x {shape[1]} boolean array (True = valid pixel); "
                         f"got {m.dtype} {m.shape}")
    return m


def _wavelengths(wavelengths, n_bands):
    if wavelengths is None:
        return None
    wl = np.asarray(wavelengths, dtype=np.float64)
    if wl.shape != (n_bands,) or not np.all(np.isfinite(wl)):
        raise ValueError(f"wavelengths must hold {n_bands} finite values (nm), one per HSI band; got shape {wl.shape}")
    return wl


def _shown(cube, bands, step, valid=None):
    """Bands ``bands`` of every step-th pixel of ``cube`` as float64 (only those are copied), NaN where
    ``valid`` (H x W) is False."""
    img = cube[::step, ::step][:, :, list(bands)].astype(np.float64)
    if valid is not None:
        img[~valid[::step, ::step]] = np.nan
    return img


def _residual_display(residual, bounds):
    """A magnified residual (h, w, 3) shown on the scale of its image's stretch ``bounds``: mid-grey for
    no error, one image range (2nd-98th percentile) per unit of 0.5 either way, clipped; NaN black."""
    lo, hi = bounds
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    shown = np.clip(0.5 + residual / span, 0.0, 1.0)
    return np.where(np.isfinite(shown), shown, 0.0)


def _image_axes(ax, img, label):
    ax.imshow(img, interpolation="nearest")
    ax.set_title(label, fontsize=8)
    ax.set_axis_off()


# ----------------------------------------------------------------------------- Fig. 2: consistency

def save_consistency_figure(path, y, y_regen, z, z_regen, wavelengths=None, srf=None, msi_band_names=None,
                            lr_valid=None, hr_valid=None, scores=None, title=None):
    """Write the UDALN paper's Fig. 2 (the learned degradations applied to the fused image) and return
    a ``Drawn``.

    y: the LR-HSI Y, h x w x C; y_regen: SpaDnet(X_hat), h x w x C; z: the HR-MSI Z, H x W x Cm (or
    H x W); z_regen: the HR-MSI regenerated from X_hat (``nets.to_msi``: SpeDnet, harmonised by GCE for
    UDS2C2), same shape; any units, the same for an image and its regeneration. wavelengths: the C HSI
    band centres in nm, or None. srf: C x Cm spectral response (columns = MSI bands), used with the
    wavelengths to pick the MSI bands shown as red, green, blue (else the first three bands).
    msi_band_names: Cm labels, or None. lr_valid (h x w), hr_valid (H x W): boolean masks of the pixels
    to score and show (True = valid; others black), None for all. scores: the consistency scores
    already computed, as metrics.json's "no_reference" ({"lrhsi_consistency": {"PSNR": dB, "SAM":
    degrees, ...}, "hrmsi_consistency": {...}}), shown instead of computing them again (on a large
    scene that pass over the HR-MSI is the figure's main cost); None computes them. title: the figure's title.

    Rows: LR-HSI, HR-MSI. Columns: the input, its regeneration (titled with PSNR in dB and SAM in
    degrees over the valid pixels, ``evaluation.evaluate``, as metrics.json's no_reference
    consistency), and the residual input - regeneration x40 of the bands shown, mid-grey for 0 on
    the input's stretch. The input and its regeneration share the input's stretch.
    ``panels[row]``: 'input', 'regenerated', 'residual' (= 40 (input - regenerated), before display);
    ``numbers[row]``: 'PSNR', 'SAM'; rows 'lrhsi' and 'hrmsi'. PNG of 1200 x 800 pixels.
    Raises ValueError for arrays whose shapes do not fit together, OSError when ``path`` cannot be written.
    """
    y, y_regen = _cube(y, "y"), _cube(y_regen, "y_regen")
    z, z_regen = _cube(z, "z", True), _cube(z_regen, "z_regen", True)
    _same_shape(y, y_regen, "y", "y_regen")
    _same_shape(z, z_regen, "z", "z_regen")
    wl = _wavelengths(wavelengths, y.shape[2])
    lr_valid, hr_valid = _mask(lr_valid, y.shape, "lr_valid"), _mask(hr_valid, z.shape, "hr_valid")
    if srf is not None and np.shape(srf) != (y.shape[2], z.shape[2]):
        raise ValueError(f"srf must be C x Cm = {y.shape[2]} x {z.shape[2]}; got shape {np.shape(srf)}")
    if msi_band_names is not None and len(msi_band_names) != z.shape[2]:
        raise ValueError(f"msi_band_names must name the {z.shape[2]} MSI bands; got {len(msi_band_names)}")
    hsi_bands, _ = ql._hsi_bands(wl, y.shape[2])
    msi_bands, _ = ql._msi_bands(z.shape[2], wl, None if srf is None else np.asarray(srf, dtype=np.float64))
    rows = (("lrhsi", "LR-HSI Y", r"SpaDnet($\hat{X}$)", y, y_regen, hsi_bands, ql._band_label(hsi_bands, wl),
             lr_valid),
            ("hrmsi", "HR-MSI Z", r"SpeDnet($\hat{X}$)", z, z_regen, msi_bands,
             ql._band_label(msi_bands, None, msi_band_names), hr_valid))
    fig = _figure(3 * PANEL_INCHES, 2 * PANEL_INCHES)
    grid = fig.add_gridspec(2, 3, left=0.02, right=0.98, bottom=0.02, top=0.86 if title else 0.9,
                            wspace=0.1, hspace=0.3)
    drawn = Drawn(path=path)
    for i, (key, name, regen_name, image, regen, bands, band_label, valid) in enumerate(rows):
        if scores is None:
            computed = evaluate(image, regen, 1, ssim=False, mask=valid)
        elif not {"PSNR", "SAM"} <= set(scores.get(f"{key}_consistency") or {}):
            raise ValueError(f"scores must hold {key}_consistency with PSNR and SAM, as metrics.json's no_reference; "
                             f"got keys {sorted(scores)}")
        else:
            computed = scores[f"{key}_consistency"]
        numbers = {"PSNR": float(computed["PSNR"]), "SAM": float(computed["SAM"])}
        step = ql._display_step(*image.shape[:2])
        shown, shown_regen = _shown(image, bands, step, valid), _shown(regen, bands, step, valid)
        residual = RESIDUAL_GAIN * (shown - shown_regen)
        bounds = ql._bounds(shown)
        size = f"{image.shape[0]} x {image.shape[1]}" + (f", subsampled by {step}" if step > 1 else "")
        _image_axes(fig.add_subplot(grid[i, 0]), ql._stretch(shown, bounds), f"{name} ({size})\n{band_label}")
        _image_axes(fig.add_subplot(grid[i, 1]), ql._stretch(shown_regen, bounds),
                    f"{regen_name}\nPSNR {numbers['PSNR']:.2f} dB, SAM {numbers['SAM']:.3f} deg")
        _image_axes(fig.add_subplot(grid[i, 2]), _residual_display(residual, bounds),
                    f"residual x{RESIDUAL_GAIN:g}\n(mid-grey = 0)")
        drawn.panels[key] = {"input": shown, "regenerated": shown_regen, "residual": residual}
        drawn.numbers[key] = numbers
        drawn.step = max(drawn.step, step)
    if title:
        fig.suptitle(title)
    drawn.path = _write(fig, path)
    return drawn


# ----------------------------------------------------------------------------- Fig. 3: comparison

def _reference_statistics(ref, valid):
    """Over the shown reference (h x w x C, a strided view) and its valid pixels: the bands that vary
    (as ``evaluation``, whose metrics leave constant bands out) and the largest magnitude, in blocks of rows."""
    lows, highs, peaks = [], [], []
    for rows in row_blocks(ref.shape):
        t = np.asarray(ref[rows], dtype=np.float64)
        t = t.reshape(-1, ref.shape[2]) if valid is None else t[valid[rows]]
        if t.shape[0]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # NaN-only bands: neither varying nor a peak
                lows.append(np.nanmin(t, axis=0))
                highs.append(np.nanmax(t, axis=0))
            peaks.append(np.nanmax(np.abs(t), initial=0.0))
    if not lows:
        raise ValueError("no valid pixel in the reference: check the mask (True = valid pixel)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        keep = np.nanmax(highs, axis=0) != np.nanmin(lows, axis=0)
    return keep, max(peaks)


def mrae_map(t, p, zero):
    """Per-pixel mean over bands of |p - t| / |t| of two h x w x K float64 cubes (reference t, estimate
    p), leaving out the values where |t| <= ``zero`` (or t is NaN); NaN for a pixel with no band left,
    or with a NaN estimate. Unitless (0.01 = 1 %). Returns h x w."""
    magnitude = np.abs(t)
    counted = magnitude > zero
    ratios = np.divide(np.abs(p - t), magnitude, out=np.zeros_like(t), where=counted)
    count = counted.sum(axis=2)
    return np.divide(ratios.sum(axis=2), count, out=np.full(count.shape, np.nan), where=count > 0)


def _error_maps(ref, est, keep, valid, kinds):
    """Per-pixel maps of the shown estimate against the shown reference (h x w x C views) over the bands
    ``keep``, computed in blocks of rows: {name: h x w float64 map} for each (name, function) of ``kinds``,
    a function of two float64 (rows, w, K) cubes (reference, estimate) giving (rows, w); NaN where
    ``valid`` (h x w bool) is False."""
    maps = {name: np.empty(ref.shape[:2]) for name, _ in kinds}
    for rows in row_blocks(ref.shape):
        t = np.asarray(ref[rows], dtype=np.float64)[:, :, keep]
        p = np.asarray(est[rows], dtype=np.float64)[:, :, keep]
        with np.errstate(invalid="ignore"):  # NaN spectra (no data) give NaN pixels
            for name, function in kinds:
                maps[name][rows] = function(t, p)
    if valid is not None:
        for values in maps.values():
            values[~valid] = np.nan
    return maps


def _shared_scale(maps):
    """Upper end of a row's colour scale: MAP_SCALE_PERCENTILE of all the row's finite values (1 when none
    or all 0)."""
    values = np.concatenate([m[np.isfinite(m)] for m in maps])
    top = float(np.percentile(values, MAP_SCALE_PERCENTILE)) if values.size else 0.0
    return top if top > 0 else 1.0


def save_comparison_figure(path, reference, outputs, wavelengths=None, mask=None, title=None):
    """Write the papers' Fig. 3 for one table and return a ``Drawn``.

    reference: the reference HR-HSI X, H x W x C; outputs: {method name: X_hat, H x W x C} in the
    order of the columns (deep and classical methods alike), the same units as the reference (MRAE
    is not scale-free); a value may instead be a function without arguments that returns X_hat,
    called when its column is drawn, so that only one fused image need be in memory. wavelengths:
    the C band centres in nm, or None. mask: H x W bool, True = pixel to show and score (others black
    or grey), None for all; NaN values count as invalid too.

    Columns: the reference, then one per method. Rows: colour composites (one stretch, the
    reference's); the SAM map (degrees per pixel, as ``evaluation.compute_sam``: over the bands that
    vary in the reference, with its 1e-7); the MRAE map (per pixel, the mean over bands of
    |X_hat - X| / |X|, leaving out values where |X| <= MRAE_ZERO_FRACTION x the reference's largest
    magnitude). Each map row has one colour scale, 0 to the 99th percentile of all its maps, and a
    colour bar; titles give each map's mean. Above 1000 pixels a side the maps are computed on the
    pixels shown only (every k-th row and column; ``Drawn.step``), in blocks, never copying a cube.
    ``panels[name]``: 'composite', 'SAM', 'MRAE' ('composite' only for 'reference');
    ``numbers[name]``: 'SAM', 'MRAE' (the maps' means), ``numbers['scale']``: the rows' upper ends.
    PNG of (1 + len(outputs)) x 300 + 100 by 900 pixels. Raises ValueError for no outputs, shapes that
    differ, wrong wavelengths or mask; OSError when ``path`` cannot be written.
    """
    reference = _cube(reference, "reference")
    if not outputs:
        raise ValueError("outputs is empty: give {method name: fused image} of at least one method")
    outputs = {str(name): x for name, x in outputs.items()}
    wl = _wavelengths(wavelengths, reference.shape[2])
    mask = _mask(mask, reference.shape, "mask")
    bands, _ = ql._hsi_bands(wl, reference.shape[2])
    step = ql._display_step(*reference.shape[:2])
    ref = reference[::step, ::step]
    valid = None if mask is None else mask[::step, ::step]
    keep, peak = _reference_statistics(ref, valid)
    if not keep.any():
        raise ValueError("every band of the reference is constant over the valid pixels: no SAM or MRAE is defined")
    zero = MRAE_ZERO_FRACTION * peak

    drawn = Drawn(path=path, step=step)
    drawn.panels["reference"] = {"composite": _shown(reference, bands, step, mask)}
    for name, x in outputs.items():
        x = _cube(x() if callable(x) else x, f"outputs[{name!r}]")
        _same_shape(reference, x, "reference", f"outputs[{name!r}]")
        maps = _error_maps(ref, x[::step, ::step], keep, valid,
                           (("SAM", spectral_angles), ("MRAE", lambda t, p: mrae_map(t, p, zero))))
        sam, mrae = maps["SAM"], maps["MRAE"]
        drawn.panels[name] = {"composite": _shown(x, bands, step, mask), "SAM": sam, "MRAE": mrae}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN map has no mean
            drawn.numbers[name] = {"SAM": float(np.nanmean(sam)), "MRAE": float(np.nanmean(mrae))}
    drawn.numbers["scale"] = {kind: _shared_scale([drawn.panels[n][kind] for n in outputs]) for kind in ("SAM", "MRAE")}

    import matplotlib

    colours = matplotlib.colormaps[ERROR_COLOURMAP].with_extremes(bad="0.5")
    n = 1 + len(outputs)
    width = n * COMPARISON_PANEL_INCHES + COLOURBAR_INCHES
    fig = _figure(width, 3 * COMPARISON_PANEL_INCHES)
    grid = fig.add_gridspec(3, n + 1, width_ratios=[1.0] * n + [0.08], left=0.01,
                            right=1 - 0.6 / width, bottom=0.02, top=0.88 if title else 0.92, wspace=0.08, hspace=0.25)
    bounds = ql._bounds(drawn.panels["reference"]["composite"])
    band_label = ql._band_label(bands, wl)
    for j, name in enumerate(["reference", *outputs]):
        label = f"{name}\n{band_label}" if j == 0 else name
        _image_axes(fig.add_subplot(grid[0, j]), ql._stretch(drawn.panels[name]["composite"], bounds), label)
    units = {"SAM": ("SAM per pixel (degrees)", "{:.3f} deg"), "MRAE": ("MRAE per pixel", "{:.4f}")}
    for i, kind in enumerate(("SAM", "MRAE"), start=1):
        heading, fmt = units[kind]
        ax = fig.add_subplot(grid[i, 0])
        ax.set_axis_off()
        ax.text(0.5, 0.5, heading + (f"\n(subsampled by {step})" if step > 1 else ""), ha="center",
                va="center", fontsize=10, transform=ax.transAxes)
        for j, name in enumerate(outputs, start=1):
            ax = fig.add_subplot(grid[i, j])
            image = ax.imshow(drawn.panels[name][kind], cmap=colours, vmin=0.0, vmax=drawn.numbers["scale"][kind],
                              interpolation="nearest")
            ax.set_title(f"{name}: mean " + fmt.format(drawn.numbers[name][kind]), fontsize=8)
            ax.set_axis_off()
        fig.colorbar(image, cax=fig.add_subplot(grid[i, n]))
    if title:
        fig.suptitle(title)
    drawn.path = _write(fig, path)
    return drawn


# ----------------------------------------------------------------------------- a run's error maps

def error_maps(reference, estimate, mask=None):
    """Per-pixel SAM and RMSE of ``estimate`` against ``reference`` (H x W x C, the same units), as
    fig3_error_maps.png shows them: (sam, rmse, step), h x w float64 maps of every step-th row and
    column (step > 1 only above 1000 pixels a side, ``imagery.quicklook``'s display step). SAM in
    degrees (``evaluation.spectral_angles``), RMSE over the bands in the cubes' units
    (``evaluation.pixel_rmse``), both over the bands that vary in the reference's valid pixels shown,
    as evaluation's metrics; NaN where ``mask`` (H x W bool, True = valid pixel; None: all) is False or
    a value is NaN. At step 1 the SAM map's mean over the valid pixels is ``evaluation.compute_sam`` and
    the root of the RMSE map's mean square ``evaluation.compute_rmse``. Computed in blocks of rows,
    never copying a cube. Raises ValueError for cubes of different shapes, a wrong mask or a reference
    whose bands are all constant."""
    reference, estimate = _cube(reference, "reference"), _cube(estimate, "estimate")
    _same_shape(reference, estimate, "reference", "estimate")
    mask = _mask(mask, reference.shape, "mask")
    step = ql._display_step(*reference.shape[:2])
    ref = reference[::step, ::step]
    valid = None if mask is None else mask[::step, ::step]
    keep, _ = _reference_statistics(ref, valid)
    if not keep.any():
        raise ValueError("every band of the reference is constant over the valid pixels: no SAM or RMSE is defined")
    maps = _error_maps(ref, estimate[::step, ::step], keep, valid, (("SAM", spectral_angles), ("RMSE", pixel_rmse)))
    return maps["SAM"], maps["RMSE"], step


def save_error_maps_figure(path, reference, fused, wavelengths=None, mask=None, factor=1.0, units="input units",
                           title=None):
    """Write a run's per-pixel error maps against its reference (the UDALN paper's Fig. 3 for one run) and
    return a ``Drawn``.

    reference, fused: the reference HR-HSI X and the fused X_hat, H x W x C, in the same (scaled) units;
    ``factor`` multiplies them back to the input's units (the RMSE map is shown in those, named by
    ``units``: reflectance for a reflectance cube). wavelengths: the C band centres in nm, or None.
    mask: H x W bool, True = pixel to show and score (others black or grey), None for all.

    Panels: the reference and the fused image as colour composites (``imagery.quicklook``'s bands, true
    colour when the wavelengths cover 470-640 nm; one stretch, the reference's); the SAM map (degrees
    per pixel) and the RMSE-over-bands map (per pixel, in ``units``) of ``error_maps``, each on a colour
    scale from 0 to the 99th percentile of its values with a colour bar, titled with the SAM's mean
    (metrics.json's final SAM) and the image's RMSE (the root of the map's mean square: metrics.json's
    final RMSE times ``factor``). Above 1000 pixels a side the maps are computed on the pixels shown.
    ``panels``: 'reference' {'composite'}, 'fused' {'composite', 'SAM', 'RMSE'}; ``numbers``: 'fused'
    {'SAM', 'RMSE'}, 'scale' {'SAM', 'RMSE'} (the colour scales' upper ends). PNG of 1300 x 380 pixels.
    Raises ValueError as ``error_maps`` and for wrong wavelengths; OSError when ``path`` cannot be written.
    """
    reference, fused = _cube(reference, "reference"), _cube(fused, "fused")
    mask = _mask(mask, reference.shape, "mask")
    sam, rmse, step = error_maps(reference, fused, mask)
    rmse *= factor
    wl = _wavelengths(wavelengths, reference.shape[2])
    bands, _ = ql._hsi_bands(wl, reference.shape[2])
    drawn = Drawn(path=path, step=step)
    drawn.panels["reference"] = {"composite": _shown(reference, bands, step, mask)}
    drawn.panels["fused"] = {"composite": _shown(fused, bands, step, mask), "SAM": sam, "RMSE": rmse}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN map has no mean
        drawn.numbers["fused"] = {"SAM": float(np.nanmean(sam)), "RMSE": float(np.sqrt(np.nanmean(rmse ** 2)))}
    drawn.numbers["scale"] = {"SAM": _shared_scale([sam]), "RMSE": _shared_scale([rmse])}

    import matplotlib

    colours = matplotlib.colormaps[ERROR_COLOURMAP].with_extremes(bad="0.5")
    fig = _figure(4 * COMPARISON_PANEL_INCHES + COLOURBAR_INCHES, 3.8)
    # Columns: the two composites, the SAM map and its colour bar, room for the bar's labels, the RMSE
    # map and its colour bar.
    grid = fig.add_gridspec(1, 7, width_ratios=[1.0, 1.0, 1.0, 0.06, 0.3, 1.0, 0.06], left=0.01, right=0.93,
                            bottom=0.03, top=0.78 if title else 0.84, wspace=0.1)
    bounds = ql._bounds(drawn.panels["reference"]["composite"])
    subsampled = f" (subsampled by {step})" if step > 1 else ""
    band_label = ql._band_label(bands, wl)
    for j, name in enumerate(("reference", "fused")):
        _image_axes(fig.add_subplot(grid[0, j]), ql._stretch(drawn.panels[name]["composite"], bounds),
                    f"{name}{subsampled}\n{band_label}")
    numbers = drawn.numbers["fused"]
    maps = (("SAM", 2, f"SAM per pixel\nmean {numbers['SAM']:.3f} deg", "SAM (degrees)"),
            ("RMSE", 5, f"RMSE over bands per pixel\nimage RMSE {numbers['RMSE']:.4g} ({units})", f"RMSE ({units})"))
    for kind, column, heading, bar_label in maps:
        ax = fig.add_subplot(grid[0, column])
        image = ax.imshow(drawn.panels["fused"][kind], cmap=colours, vmin=0.0, vmax=drawn.numbers["scale"][kind],
                          interpolation="nearest")
        ax.set_title(heading, fontsize=8)
        ax.set_axis_off()
        fig.colorbar(image, cax=fig.add_subplot(grid[0, column + 1])).set_label(bar_label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    drawn.path = _write(fig, path)
    return drawn


# ----------------------------------------------------------------------------- PSF and SRF

def save_degradation_figure(path, psf_est, psf_true, srf_est, srf_true, wavelengths=None, msi_band_names=None,
                            truth_label="true", title=None):
    """Write the learned PSF and SRF against the true (or nominal) ones and return a ``Drawn``.

    psf_est: the learned PSF, k x k, and psf_true the true one (None when unknown), in the same form
    (SpaDnet stores a correlation kernel: flip a convolution kernel in both axes first); srf_est: the
    learned spectral response, C x Cm (columns = MSI bands), srf_true the true one or None.
    wavelengths: the C HSI band centres in nm, or None (then the x axis is the HSI band index).
    msi_band_names: Cm labels, or None. truth_label: what the truth is ('true', or 'nominal' for a real
    pair's sensor response).

    Top row: the two PSFs on one colour scale and their difference (learned - true) on a scale
    symmetric about 0, titled with the relative error |learned - true|_F / |true|_F. Below: one panel
    per MSI band (SRF_COLUMNS a row), the learned response (solid) over the true one (dashed), the x
    axis zoomed on the bands where either is non-zero, titled with that band's relative error.
    ``numbers['psf']``: 'rel_error'; ``numbers['srf']``: {band name: rel_error} (with a truth).
    PNG of 1200 x (1 + ceil(Cm / 4)) x 300 pixels. Raises ValueError for shapes that do not fit
    together; OSError when ``path`` cannot be written.
    """
    psf_est = np.asarray(psf_est, dtype=np.float64)
    srf_est = np.asarray(srf_est, dtype=np.float64)
    if psf_est.ndim != 2 or psf_est.size == 0:
        raise ValueError(f"psf_est must be a non-empty k x k array; got shape {psf_est.shape}")
    if psf_true is not None:
        psf_true = np.asarray(psf_true, dtype=np.float64)
        _same_shape(psf_est, psf_true, "psf_est", "psf_true")
    if srf_est.ndim != 2 or srf_est.size == 0:
        raise ValueError(f"srf_est must be a non-empty C x Cm array (columns = MSI bands); got shape {srf_est.shape}")
    if srf_true is not None:
        srf_true = np.asarray(srf_true, dtype=np.float64)
        _same_shape(srf_est, srf_true, "srf_est", "srf_true")
    n_hsi, n_msi = srf_est.shape
    wl = _wavelengths(wavelengths, n_hsi)
    names = [f"band {k}" for k in range(n_msi)] if msi_band_names is None else [str(n) for n in msi_band_names]
    if len(names) != n_msi:
        raise ValueError(f"msi_band_names must name the {n_msi} MSI bands; got {len(names)}")

    srf_rows = -(-n_msi // SRF_COLUMNS)
    fig = _figure(SRF_COLUMNS * DEGRADATION_PANEL_INCHES, (1 + srf_rows) * DEGRADATION_PANEL_INCHES)
    grid = fig.add_gridspec(1 + srf_rows, SRF_COLUMNS, left=0.06, right=0.97, bottom=0.06,
                            top=0.9 if title else 0.93, wspace=0.35, hspace=0.5)
    drawn = Drawn(path=path, panels={"psf": {"learned": psf_est}, "srf": {"learned": srf_est}})
    kernels = [(psf_est, "learned PSF")]
    if psf_true is not None:
        kernels.append((psf_true, f"{truth_label} PSF"))
        drawn.panels["psf"].update({truth_label: psf_true, "difference": psf_est - psf_true})
        drawn.numbers["psf"] = {"rel_error": float(np.linalg.norm(psf_est - psf_true) / np.linalg.norm(psf_true))}
    vmin, vmax = min(k.min() for k, _ in kernels), max(k.max() for k, _ in kernels)
    for i, (kernel, label) in enumerate(kernels):
        ax = fig.add_subplot(grid[0, i])
        image = ax.imshow(kernel, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{label} ({kernel.shape[0]} x {kernel.shape[1]})", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    if psf_true is not None:
        ax = fig.add_subplot(grid[0, 2])
        difference = drawn.panels["psf"]["difference"]
        extent = float(np.abs(difference).max()) or 1.0
        image = ax.imshow(difference, cmap="RdBu_r", vmin=-extent, vmax=extent, interpolation="nearest")
        ax.set_title(f"learned - {truth_label}\nrel. error {drawn.numbers['psf']['rel_error']:.4f}", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)

    x = wl if wl is not None else np.arange(n_hsi, dtype=np.float64)
    used = (srf_est != 0) | (srf_true != 0 if srf_true is not None else False)
    if srf_true is not None:
        drawn.panels["srf"][truth_label] = srf_true
        norms = np.linalg.norm(srf_true, axis=0)
        errors = np.linalg.norm(srf_est - srf_true, axis=0) / np.where(norms > 0, norms, np.nan)
        drawn.numbers["srf"] = dict(zip(names, errors.tolist()))
    for k in range(n_msi):
        ax = fig.add_subplot(grid[1 + k // SRF_COLUMNS, k % SRF_COLUMNS])
        ax.plot(x, srf_est[:, k], color="C0", label="learned")
        if srf_true is not None:
            ax.plot(x, srf_true[:, k], color="C1", linestyle="--", label=truth_label)
        support = np.flatnonzero(used[:, k])
        if support.size:
            first, last = max(support[0] - 2, 0), min(support[-1] + 2, n_hsi - 1)
            if last > first:
                ax.set_xlim(x[first], x[last])
        heading = names[k] + (f", rel. error {drawn.numbers['srf'][names[k]]:.3f}" if srf_true is not None else "")
        ax.set_title(heading, fontsize=9)
        ax.set_xlabel("wavelength (nm)" if wl is not None else "HSI band index", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    drawn.path = _write(fig, path)
    return drawn


# ----------------------------------------------------------------------------- loss curves

def save_loss_curves(path, loss_history, title=None):
    """Write the training loss of each stage against the epoch and return a ``Drawn``.

    loss_history: {stage: {"epoch": [...], "loss": [...]}} (stage an int or its string, as in
    metrics.json's "loss_history"; epochs 1-based within the stage, losses the stage's objective,
    the sum of its L1 terms in the images' scaled units). One panel per stage, in stage order, the
    loss on a logarithmic axis when every value is positive. ``panels[stage]``: 'epoch', 'loss'.
    PNG of (stages x 400) x 350 pixels. Raises ValueError for an empty history or a stage whose
    lists differ in length; OSError when ``path`` cannot be written.
    """
    if not loss_history:
        raise ValueError("the loss history is empty: it is recorded every func.LOSS_CHECK_EVERY epochs (and at "
                         "each stage's last) by runs of this version; older runs have none")
    stages = sorted(loss_history, key=int)
    width = len(stages) * PANEL_INCHES
    fig = _figure(width, 3.5)
    # Fixed margins in inches: the logarithmic axis' labels (e.g. 6 x 10^-1) need about 0.9 inch.
    grid = fig.add_gridspec(1, len(stages), left=0.9 / width, right=1 - 0.2 / width, bottom=0.15,
                            top=0.8 if title else 0.87, wspace=0.3)
    drawn = Drawn(path=path)
    for i, stage in enumerate(stages):
        epochs = np.asarray(loss_history[stage]["epoch"], dtype=np.float64)
        losses = np.asarray(loss_history[stage]["loss"], dtype=np.float64)
        if epochs.shape != losses.shape or epochs.ndim != 1:
            raise ValueError(f"loss history of stage {stage}: {epochs.size} epochs for {losses.size} losses; "
                             "give one loss per epoch")
        ax = fig.add_subplot(grid[0, i])
        ax.plot(epochs, losses, marker="." if epochs.size < 50 else None)
        if losses.size and np.all(losses > 0):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        if i == 0:
            ax.set_ylabel("training loss")
        ax.set_title(f"Stage {stage}" + (f": last {losses[-1]:.3e}" if losses.size else ""), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        drawn.panels[str(stage)] = {"epoch": epochs, "loss": losses}
    if title:
        fig.suptitle(title)
    drawn.path = _write(fig, path)
    return drawn


# ----------------------------------------------------------------------------- run folders

def read_metrics(folder):
    """metrics.json of the finished run in ``folder``, as a dict. Raises DataError when the folder or its
    metrics.json is missing (an unfinished run) or unreadable."""
    path = os.path.join(folder, "metrics.json")
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: run folder not found")
    if not os.path.isfile(path):
        raise DataError(f"{folder}: no metrics.json, so not a finished run; finish it (--resume {folder}) first")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); run the fusion again to rewrite it") from None


def _source_image(metrics):
    """A real-pair run's LR-HSI file read again for its metadata (band centres, no-data value), or None:
    a simulated pair, or a file that cannot be read any more (logged). The path is the one the run was
    given, relative to the folder it was started from."""
    options = metrics.get("options") or {}
    path = options.get("lr_hsi") or metrics.get("lr_hsi")
    if not path:
        return None
    try:
        return read_image(path, key=options.get("lr_hsi_key"), role="LR-HSI", dtype=np.float32)
    except DataError as exc:
        log.warning("%s; its band centres and no-data value are unknown here", exc)
        return None


def run_metadata(metrics, n_bands):
    """(band centres in nm or None, no-data value or None) of the run whose metrics.json is ``metrics``
    and whose HSI has ``n_bands`` bands. Band centres: metrics.json's data.wavelengths, else the run's
    --hsi_wavelengths file, else those its LR-HSI file declares; the no-data value: data.nodata, else
    the run's --nodata, else the LR-HSI file's. Files that cannot be read any more are logged and give None."""
    data, options = metrics.get("data") or {}, metrics.get("options") or {}
    wavelengths, nodata = data.get("wavelengths"), data.get("nodata", options.get("nodata"))
    source = _source_image(metrics) if wavelengths is None or nodata is None else None
    if wavelengths is None and options.get("hsi_wavelengths"):
        try:
            wavelengths = read_wavelengths(options["hsi_wavelengths"], n_bands)[0]
        except DataError as exc:
            log.warning("%s; the SRF is drawn against the band index", exc)
    elif wavelengths is None and source is not None:
        wavelengths = source.wavelengths
    if nodata is None and source is not None:
        nodata = source.nodata
    if wavelengths is not None and len(wavelengths) != n_bands:
        wavelengths = None
    return (None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)), nodata


def _metrics_array(metrics, key, folder):
    if metrics.get(key) is None:
        raise DataError(f"{folder}/metrics.json: no {key!r}; it was written by an older version: run the fusion "
                        "again to draw this figure")
    return np.asarray(metrics[key], dtype=np.float64)


def save_run_figures(run_folder):
    """Redraw psf_srf.png and loss_curves.png in a finished run folder from its metrics.json alone
    (fig2_consistency.png needs the networks and is written by the run itself). Returns the paths
    written. The true PSF (or a real pair's nominal one) is flipped into SpaDnet's correlation form
    and both are placed on the larger support (data_loader.on_support) before they are compared; band
    centres as ``run_metadata``. A run without a loss history (older runs) gets no loss_curves.png
    (logged). Raises DataError for a folder that is not a finished run
    or a metrics.json without the estimated PSF and SRF."""
    metrics = read_metrics(run_folder)
    psf = _metrics_array(metrics, "estimated_psf", run_folder)
    srf = _metrics_array(metrics, "estimated_srf", run_folder)
    truth = "true" if metrics.get("true_psf") is not None else "nominal"
    psf_true = metrics.get(f"{truth}_psf")
    srf_true = metrics.get(f"{truth}_srf")
    if psf_true is not None:
        psf_true = np.flip(np.asarray(psf_true, dtype=np.float64))
        size = max(psf.shape[0], psf_true.shape[0])  # a --psf_size or --sim_psf_size run: one support for both
        psf, psf_true = (on_support(k, size, metrics["scale_factor"]) for k in (psf, psf_true))
    name = os.path.basename(os.path.normpath(run_folder))
    written = [save_degradation_figure(
        os.path.join(run_folder, RUN_FIGURES[0]), psf, psf_true,
        srf, srf_true, wavelengths=run_metadata(metrics, srf.shape[0])[0],
        msi_band_names=(metrics.get("data") or {}).get("msi_band_names"), truth_label=truth, title=name).path]
    if metrics.get("loss_history"):
        written.append(save_loss_curves(os.path.join(run_folder, RUN_FIGURES[1]), metrics["loss_history"],
                                        title=name).path)
    else:
        log.warning("%s: metrics.json has no loss history (a run of an older version): no %s", run_folder,
                    RUN_FIGURES[1])
    return written


def _crop_like_run(shape, metrics, fused_shape):
    """(rows, columns) slices of a reference of ``shape`` cropped as the run of ``metrics`` cropped its
    cube, unless it already has the fused image's size ``fused_shape``: Wald's protocol centrally
    (data.crop, else data_loader.crop_to_multiple's rule), a real pair at the bottom and right (data.hr_crop)."""
    data = metrics.get("data") or {}
    height, width = shape[:2]
    if (height, width) == tuple(fused_shape[:2]):
        return slice(None), slice(None)
    if data.get("hr_crop"):
        return slice(0, fused_shape[0]), slice(0, fused_shape[1])
    if data.get("crop"):
        top, bottom, left, right = (data["crop"][k] for k in ("top", "bottom", "left", "right"))
    else:
        _, (top, bottom, left, right) = crop_to_multiple(np.broadcast_to(0, (height, width)),
                                                         int(metrics.get("scale_factor") or 1), with_offsets=True)
    return slice(top, height - bottom), slice(left, width - right)


def _comparison_entries(items):
    """[(label, path, metrics or None)] of --compare's run folders (labelled by their method, or by their
    folder name when two share one) and files of fused images (labelled by their stem). An item
    ``LABEL=PATH`` (where no file or folder of that whole name exists) is labelled LABEL."""
    entries = []
    for item in items:
        given = None
        if "=" in item and not os.path.exists(item):
            given, item = item.split("=", 1)
        if os.path.isdir(item):
            metrics = read_metrics(item)
            entries.append((given or metrics.get("method") or os.path.basename(os.path.normpath(item)), item,
                            metrics, given is not None))
        elif os.path.isfile(item):
            entries.append((given or os.path.splitext(os.path.basename(item))[0], item, None, given is not None))
        else:
            raise DataError(f"{item}: neither a run folder nor a file of a fused image")
    labels = [label for label, _, _, _ in entries]
    return [(os.path.basename(os.path.normpath(item)) if labels.count(label) > 1 and not named else label, item,
             metrics) for label, item, metrics, named in entries]


def _scaled_fused(item, metrics, reference_factor):
    """The fused image of a run folder (My_Out.mat, else My_Out.tif or My_Out.hdr) or of a file, float32,
    divided by the run's scaling factor (a file, or a folder whose metrics.json has none, such as a
    baseline cell of reproduce.tables: by the reference's), NaN where it has no data
    (imagery.radiometry.invalid_pixels with the file's no-data value, else the run's)."""
    nodata = None
    if metrics is None:
        path, factor = item, reference_factor
    else:
        data = metrics.get("data") or {}
        factor = data.get("hsi_factor") or data.get("scale") or reference_factor
        found = [os.path.join(item, n) for n in ("My_Out.mat", "My_Out.tif", "My_Out.hdr")
                 if os.path.isfile(os.path.join(item, n))]
        if not found:
            raise DataError(f"{item}: no My_Out.mat, My_Out.tif or My_Out.hdr; the run folder is incomplete: run "
                            "the fusion again")
        path = found[0]
        nodata = run_metadata(metrics, 1)[1]
    image = read_image(path, key="Out" if path.endswith("My_Out.mat") else None, role="fused image",
                       dtype=np.float32)
    cube = image.data
    invalid = invalid_pixels(cube, image.nodata if image.nodata is not None else nodata)
    cube /= np.float32(factor)
    cube[invalid] = np.nan
    return cube


def save_run_comparison(path, items, reference_path, reference_key=None):
    """Fig. 3 (``save_comparison_figure``) of several runs' fused images (and fused-image files) against
    the reference cube in ``reference_path`` (variable ``reference_key``, else REF, else the only 3-D
    array), cropped as the first run cropped it. Each image is brought to the runs' scaled units
    (README "Scaling rule": the reference divided by its own power of ten, a run's output by its run's factor, a
    file by the reference's), so that runs of a reflectance cube and of the same cube x 10000 compare; no-data
    pixels are left out. Only one fused image is in memory at a time. Band centres from the first run
    (``run_metadata``), else those the reference file declares. Returns the ``Drawn``. Raises DataError for
    unreadable files or a fused image whose size differs from the (cropped) reference's."""
    entries = _comparison_entries(items)
    runs = [metrics for _, _, metrics in entries if metrics is not None]
    first_run = runs[0] if runs else {}
    ref_image = read_image(reference_path, key=reference_key, role="reference cube", key_option="--reference_key",
                           dtype=np.float32)
    ref_invalid = invalid_pixels(ref_image.data, ref_image.nodata)
    reference_factor = power_of_ten_scale(ref_image.data, ~ref_invalid)
    # The first image is read before the others, to learn the size the runs cropped the reference to.
    label, item, metrics = entries[0]
    first = [_scaled_fused(item, metrics, reference_factor)]
    rows, cols = _crop_like_run(ref_image.data.shape, first_run, first[0].shape)
    reference = ref_image.data[rows, cols]
    reference /= np.float32(reference_factor)
    reference[ref_invalid[rows, cols]] = np.nan

    def loader(item, metrics):
        def load():
            cube = first.pop() if first else _scaled_fused(item, metrics, reference_factor)
            if cube.shape != reference.shape:
                raise DataError(f"{item}: the fused image is {' x '.join(map(str, cube.shape))} but the reference "
                                f"{reference_path} is {' x '.join(map(str, reference.shape))} (as the runs cropped "
                                "it); give the reference of this scene (the full cube the runs were simulated from)")
            return cube
        return load

    outputs = {label: loader(item, metrics) for label, item, metrics in entries}
    step = ql._display_step(*reference.shape[:2])
    title = (f"compared with {os.path.basename(reference_path)}, in scaled units"
             + (f" (subsampled by {step})" if step > 1 else ""))
    wavelengths = run_metadata(first_run, reference.shape[2])[0] if runs else None
    return save_comparison_figure(path, reference, outputs, title=title,
                                  wavelengths=ref_image.wavelengths if wavelengths is None else wavelengths)


def main(argv=None):
    """The command line (module docstring); returns the exit code: 0, or 1 after a one-line error."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m reproduce.figures", description=(
        "Redraw psf_srf.png and loss_curves.png of finished run folders from their metrics.json, or draw "
        "the papers' Fig. 3 comparing several runs (--compare) against a reference."))
    parser.add_argument("runs", nargs="*", metavar="RUN_FOLDER", help="finished run folders to redraw")
    parser.add_argument("--compare", nargs="+", metavar="RUN_OR_FILE",
                        help="run folders (their My_Out.mat) and files of fused images to compare; LABEL=PATH "
                             "names one in the figure")
    parser.add_argument("--reference", metavar="FILE", help="the reference HR-HSI cube (with --compare)")
    parser.add_argument("--reference_key", metavar="NAME", help="its variable in a .mat/.h5 file (default REF)")
    parser.add_argument("--out", default="fig3_comparison.png", help="the comparison PNG (default %(default)s)")
    args = parser.parse_args(argv)
    if not args.runs and not args.compare:
        parser.error("give run folders to redraw, or --compare RUN ... --reference FILE")
    if args.compare and not args.reference:
        parser.error("--compare needs --reference FILE (the reference cube of the scene)")
    try:
        for folder in args.runs:
            for path in save_run_figures(folder):
                log.info("wrote %s", path)
        if args.compare:
            log.info("wrote %s", save_run_comparison(args.out, args.compare, args.reference, args.reference_key).path)
    except (ValueError, OSError) as exc:  # DataError is a ValueError
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
