"""The figures of a run folder, drawn with matplotlib (Agg canvas, PNG): ``draw_run_figures`` writes them
at the end of a run, and ``reproduce.figures`` redraws them from a finished run folder.

- ``save_consistency_figure``: the UDALN paper's Fig. 2 (J. Li et al., "Deep Unsupervised Blind
  Hyperspectral and Multispectral Data Fusion", IEEE GRSL 19, 2022): the LR-HSI and the HR-MSI
  regenerated from the fused image by the learned degradations, next to the inputs, with the
  residuals magnified x40 (fig2_consistency.png).
- ``save_error_maps_figure``: Fig. 3 for one run against its reference: the reference and the fused
  image, the per-pixel SAM map and the per-pixel RMSE-over-bands map with colour bars
  (fig3_error_maps.png in a run folder with a reference; ``error_maps`` computes the maps).
- ``save_degradation_figure``: the learned PSF next to the true one and the learned SRF of every
  MSI band over the true one (psf_srf.png).
- ``save_loss_curves``: the training loss of each stage (loss_curves.png), from the loss history
  ({"<stage>": {"epoch": [...], "loss": [...]}}, recorded by func.train_stage).

Numpy cubes are H x W x C (rows, columns, bands). Colour composites use ``imagery.quicklook``'s band
choice (true colour from the wavelengths when they cover 470-640 nm, else bands spread over the
range) and its 2nd-98th percentile stretch, shared by every image of the same bands. Images larger
than 1000 pixels a side are shown (and their maps computed) on every k-th row and column only.
Every save_* function returns a ``Drawn``: the path and the arrays and numbers drawn. Arguments of
the wrong shape raise ValueError.
"""
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from evaluation import evaluate, pixel_rmse, spectral_angles
from fusion.pair import hwc
from imagery import quicklook as ql
from imagery.blocks import row_blocks
from imagery.writers import atomic_write

# The UDALN paper's Fig. 2 shows the residuals magnified 40 times.
RESIDUAL_GAIN = 40.0
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

def new_figure(width, height):
    """A matplotlib Figure of ``width`` x ``height`` inches at DPI, on an Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def write_png(fig, path):
    """The PNG through a temporary file and a rename: ``path`` never holds a partial image."""
    path = os.path.abspath(os.fspath(path))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


def as_cube(x, name, ndim_2_ok=False):
    """``x`` as an H x W x C array (an H x W one as H x W x 1 when ``ndim_2_ok``); ValueError naming
    ``name`` otherwise."""
    a = np.asarray(x)
    if ndim_2_ok and a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty {'H x W or ' if ndim_2_ok else ''}H x W x C array; "
                         f"got shape {a.shape}")
    return a


def check_same_shape(a, b, name_a, name_b):
    """ValueError naming both arrays when their shapes differ."""
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the shape of {name_a}, {a.shape}; got {b.shape}")


def as_mask(valid, shape, name):
    """``valid`` as an H x W boolean mask for a cube of ``shape`` (None stays None); ValueError naming
    ``name`` otherwise."""
    if valid is None:
        return None
    m = np.asarray(valid)
    if m.dtype != bool or m.shape != tuple(shape[:2]):
        raise ValueError(f"{name} must be an H x W = {shape[0]} x {shape[1]} boolean array (True = valid pixel); "
                         f"got {m.dtype} {m.shape}")
    return m


def as_wavelengths(wavelengths, n_bands):
    """``wavelengths`` (nm) as ``n_bands`` finite float64 values (None stays None); ValueError otherwise."""
    if wavelengths is None:
        return None
    wl = np.asarray(wavelengths, dtype=np.float64)
    if wl.shape != (n_bands,) or not np.all(np.isfinite(wl)):
        raise ValueError(f"wavelengths must hold {n_bands} finite values (nm), one per HSI band; got shape {wl.shape}")
    return wl


def shown_bands(cube, bands, step, valid=None):
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


def show_image(ax, img, label):
    """Draw ``img`` on ``ax`` without axes, titled ``label``."""
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
    y, y_regen = as_cube(y, "y"), as_cube(y_regen, "y_regen")
    z, z_regen = as_cube(z, "z", True), as_cube(z_regen, "z_regen", True)
    check_same_shape(y, y_regen, "y", "y_regen")
    check_same_shape(z, z_regen, "z", "z_regen")
    wl = as_wavelengths(wavelengths, y.shape[2])
    lr_valid, hr_valid = as_mask(lr_valid, y.shape, "lr_valid"), as_mask(hr_valid, z.shape, "hr_valid")
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
    fig = new_figure(3 * PANEL_INCHES, 2 * PANEL_INCHES)
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
        shown, shown_regen = shown_bands(image, bands, step, valid), shown_bands(regen, bands, step, valid)
        residual = RESIDUAL_GAIN * (shown - shown_regen)
        bounds = ql._bounds(shown)
        size = f"{image.shape[0]} x {image.shape[1]}" + (f", subsampled by {step}" if step > 1 else "")
        show_image(fig.add_subplot(grid[i, 0]), ql._stretch(shown, bounds), f"{name} ({size})\n{band_label}")
        show_image(fig.add_subplot(grid[i, 1]), ql._stretch(shown_regen, bounds),
                    f"{regen_name}\nPSNR {numbers['PSNR']:.2f} dB, SAM {numbers['SAM']:.3f} deg")
        show_image(fig.add_subplot(grid[i, 2]), _residual_display(residual, bounds),
                    f"residual x{RESIDUAL_GAIN:g}\n(mid-grey = 0)")
        drawn.panels[key] = {"input": shown, "regenerated": shown_regen, "residual": residual}
        drawn.numbers[key] = numbers
        drawn.step = max(drawn.step, step)
    if title:
        fig.suptitle(title)
    drawn.path = write_png(fig, path)
    return drawn


# ----------------------------------------------------------------------------- error maps

def reference_statistics(ref, valid):
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


def error_map_set(ref, est, keep, valid, kinds):
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


def shared_scale(maps):
    """Upper end of a row's colour scale: MAP_SCALE_PERCENTILE of all the row's finite values (1 when none
    or all 0)."""
    values = np.concatenate([m[np.isfinite(m)] for m in maps])
    top = float(np.percentile(values, MAP_SCALE_PERCENTILE)) if values.size else 0.0
    return top if top > 0 else 1.0


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
    reference, estimate = as_cube(reference, "reference"), as_cube(estimate, "estimate")
    check_same_shape(reference, estimate, "reference", "estimate")
    mask = as_mask(mask, reference.shape, "mask")
    step = ql._display_step(*reference.shape[:2])
    ref = reference[::step, ::step]
    valid = None if mask is None else mask[::step, ::step]
    keep, _ = reference_statistics(ref, valid)
    if not keep.any():
        raise ValueError("every band of the reference is constant over the valid pixels: no SAM or RMSE is defined")
    maps = error_map_set(ref, estimate[::step, ::step], keep, valid, (("SAM", spectral_angles), ("RMSE", pixel_rmse)))
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
    reference, fused = as_cube(reference, "reference"), as_cube(fused, "fused")
    mask = as_mask(mask, reference.shape, "mask")
    sam, rmse, step = error_maps(reference, fused, mask)
    rmse *= factor
    wl = as_wavelengths(wavelengths, reference.shape[2])
    bands, _ = ql._hsi_bands(wl, reference.shape[2])
    drawn = Drawn(path=path, step=step)
    drawn.panels["reference"] = {"composite": shown_bands(reference, bands, step, mask)}
    drawn.panels["fused"] = {"composite": shown_bands(fused, bands, step, mask), "SAM": sam, "RMSE": rmse}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN map has no mean
        drawn.numbers["fused"] = {"SAM": float(np.nanmean(sam)), "RMSE": float(np.sqrt(np.nanmean(rmse ** 2)))}
    drawn.numbers["scale"] = {"SAM": shared_scale([sam]), "RMSE": shared_scale([rmse])}

    import matplotlib

    colours = matplotlib.colormaps[ERROR_COLOURMAP].with_extremes(bad="0.5")
    fig = new_figure(4 * COMPARISON_PANEL_INCHES + COLOURBAR_INCHES, 3.8)
    # Columns: the two composites, the SAM map and its colour bar, room for the bar's labels, the RMSE
    # map and its colour bar.
    grid = fig.add_gridspec(1, 7, width_ratios=[1.0, 1.0, 1.0, 0.06, 0.3, 1.0, 0.06], left=0.01, right=0.93,
                            bottom=0.03, top=0.78 if title else 0.84, wspace=0.1)
    bounds = ql._bounds(drawn.panels["reference"]["composite"])
    subsampled = f" (subsampled by {step})" if step > 1 else ""
    band_label = ql._band_label(bands, wl)
    for j, name in enumerate(("reference", "fused")):
        show_image(fig.add_subplot(grid[0, j]), ql._stretch(drawn.panels[name]["composite"], bounds),
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
    drawn.path = write_png(fig, path)
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
        check_same_shape(psf_est, psf_true, "psf_est", "psf_true")
    if srf_est.ndim != 2 or srf_est.size == 0:
        raise ValueError(f"srf_est must be a non-empty C x Cm array (columns = MSI bands); got shape {srf_est.shape}")
    if srf_true is not None:
        srf_true = np.asarray(srf_true, dtype=np.float64)
        check_same_shape(srf_est, srf_true, "srf_est", "srf_true")
    n_hsi, n_msi = srf_est.shape
    wl = as_wavelengths(wavelengths, n_hsi)
    names = [f"band {k}" for k in range(n_msi)] if msi_band_names is None else [str(n) for n in msi_band_names]
    if len(names) != n_msi:
        raise ValueError(f"msi_band_names must name the {n_msi} MSI bands; got {len(names)}")

    srf_rows = -(-n_msi // SRF_COLUMNS)
    fig = new_figure(SRF_COLUMNS * DEGRADATION_PANEL_INCHES, (1 + srf_rows) * DEGRADATION_PANEL_INCHES)
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
    drawn.path = write_png(fig, path)
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
    fig = new_figure(width, 3.5)
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
    drawn.path = write_png(fig, path)
    return drawn



@torch.inference_mode()
def draw_run_figures(run, pair, nets, monitor, fused):
    """The run folder's figures: fig2_consistency.png (the UDALN paper's Fig. 2, only
    when the fused image was held whole: it needs SpaDnet(X_hat) and SpeDnet(X_hat) of every band),
    fig3_error_maps.png (the per-pixel SAM and RMSE maps against the reference, the UDALN paper's
    Fig. 3 for this run: when there is a reference and the fused image was held whole), psf_srf.png
    (learned PSF and SRF over the true or nominal ones, against the band centres in nm when known) and
    loss_curves.png."""
    title = os.path.basename(run.target or run.path)
    wavelengths, names = pair.wavelengths, pair.msi_band_names
    if isinstance(fused.image, np.ndarray) and pair.has_reference:
        save_error_maps_figure(run.file("fig3_error_maps.png"), pair.X, fused.image, wavelengths=wavelengths,
                               mask=pair.out_valid, factor=pair.hsi_factor, title=title)
    if isinstance(fused.image, np.ndarray) and fused.quality is not None:
        x_hat = torch.from_numpy(np.ascontiguousarray(fused.image.transpose(2, 0, 1)))[None].to(pair.Y.device)
        save_consistency_figure(run.file("fig2_consistency.png"), hwc(pair.Y), hwc(nets.spa(x_hat)), hwc(pair.Z),
                                hwc(nets.to_msi(x_hat)), wavelengths=wavelengths, srf=pair.srf, msi_band_names=names,
                                lr_valid=pair.lr_valid, hr_valid=pair.out_valid, scores=fused.quality, title=title)
    save_degradation_figure(run.file("psf_srf.png"), *monitor.psf_comparison(),
                            monitor.estimated_srf(), pair.srf, wavelengths=wavelengths, msi_band_names=names,
                            truth_label="true" if pair.known_degradations else "nominal", title=title)
    if monitor.loss_history:
        save_loss_curves(run.file("loss_curves.png"), monitor.loss_history, title=title)
