"""The papers' Fig. 3 for a table of runs, and the command line that draws figures from run folders
(matplotlib, Agg canvas, PNG). The figures of one run are ``fusion.figures``'.

- ``save_comparison_figure``: the papers' Fig. 3 layout for one table: per method the fused image,
  its per-pixel SAM map and its per-pixel mean relative absolute error (MRAE) map, on one colour
  scale per row, the reference in the first column.
- ``save_run_figures``: psf_srf.png and loss_curves.png of a finished run folder, from its
  metrics.json alone ("loss_history": {"<stage>": {"epoch": [...], "loss": [...]}}).
- ``save_run_comparison``: Fig. 3 for run folders (or fused files) against a reference file.

Command line::

    python -m reproduce.figures RUN_FOLDER [RUN_FOLDER ...]
    python -m reproduce.figures --compare RUN_OR_FILE ... --reference FILE.mat [--out fig3.png]

Numpy cubes are H x W x C (rows, columns, bands); composites, display steps and ``Drawn`` are
``fusion.figures``'. Arguments of the wrong shape raise ValueError; files that cannot be used raise
data_loader.DataError naming them.
"""
import argparse
import logging
import os
import sys
import warnings

import numpy as np

from data_loader import DataError, crop_to_multiple
from evaluation import spectral_angles
from fusion.figures import (COLOURBAR_INCHES, COMPARISON_PANEL_INCHES, ERROR_COLOURMAP, RUN_FIGURES, Drawn, as_cube,
                            as_mask, as_wavelengths, check_same_shape, error_map_set, new_figure, reference_statistics,
                            save_degradation_figure, save_loss_curves, shared_scale, show_image, shown_bands, write_png)
from fusion.run_folder import read_metrics
from imagery import quicklook as ql
from imagery.radiometry import invalid_pixels, power_of_ten_scale
from imagery.readers import read_image, read_wavelengths
from model.degradation import on_support

log = logging.getLogger(__name__)


# In the MRAE, a reference value of magnitude at most this fraction of the reference's largest counts as
# zero and is left out of its pixel's mean over bands (a pixel with no band left is undefined, grey).
MRAE_ZERO_FRACTION = 1e-3


# ----------------------------------------------------------------------------- Fig. 3: comparison

def mrae_map(t, p, zero):
    """Per-pixel mean over bands of |p - t| / |t| of two h x w x K float64 cubes (reference t, estimate
    p), leaving out the values where |t| <= ``zero`` (or t is NaN); NaN for a pixel with no band left,
    or with a NaN estimate. Unitless (0.01 = 1 %). Returns h x w."""
    magnitude = np.abs(t)
    counted = magnitude > zero
    ratios = np.divide(np.abs(p - t), magnitude, out=np.zeros_like(t), where=counted)
    count = counted.sum(axis=2)
    return np.divide(ratios.sum(axis=2), count, out=np.full(count.shape, np.nan), where=count > 0)


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
    reference = as_cube(reference, "reference")
    if not outputs:
        raise ValueError("outputs is empty: give {method name: fused image} of at least one method")
    outputs = {str(name): x for name, x in outputs.items()}
    wl = as_wavelengths(wavelengths, reference.shape[2])
    mask = as_mask(mask, reference.shape, "mask")
    bands, _ = ql._hsi_bands(wl, reference.shape[2])
    step = ql._display_step(*reference.shape[:2])
    ref = reference[::step, ::step]
    valid = None if mask is None else mask[::step, ::step]
    keep, peak = reference_statistics(ref, valid)
    if not keep.any():
        raise ValueError("every band of the reference is constant over the valid pixels: no SAM or MRAE is defined")
    zero = MRAE_ZERO_FRACTION * peak

    drawn = Drawn(path=path, step=step)
    drawn.panels["reference"] = {"composite": shown_bands(reference, bands, step, mask)}
    for name, x in outputs.items():
        x = as_cube(x() if callable(x) else x, f"outputs[{name!r}]")
        check_same_shape(reference, x, "reference", f"outputs[{name!r}]")
        maps = error_map_set(ref, x[::step, ::step], keep, valid,
                           (("SAM", spectral_angles), ("MRAE", lambda t, p: mrae_map(t, p, zero))))
        sam, mrae = maps["SAM"], maps["MRAE"]
        drawn.panels[name] = {"composite": shown_bands(x, bands, step, mask), "SAM": sam, "MRAE": mrae}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN map has no mean
            drawn.numbers[name] = {"SAM": float(np.nanmean(sam)), "MRAE": float(np.nanmean(mrae))}
    drawn.numbers["scale"] = {kind: shared_scale([drawn.panels[n][kind] for n in outputs]) for kind in ("SAM", "MRAE")}

    import matplotlib

    colours = matplotlib.colormaps[ERROR_COLOURMAP].with_extremes(bad="0.5")
    n = 1 + len(outputs)
    width = n * COMPARISON_PANEL_INCHES + COLOURBAR_INCHES
    fig = new_figure(width, 3 * COMPARISON_PANEL_INCHES)
    grid = fig.add_gridspec(3, n + 1, width_ratios=[1.0] * n + [0.08], left=0.01,
                            right=1 - 0.6 / width, bottom=0.02, top=0.88 if title else 0.92, wspace=0.08, hspace=0.25)
    bounds = ql._bounds(drawn.panels["reference"]["composite"])
    band_label = ql._band_label(bands, wl)
    for j, name in enumerate(["reference", *outputs]):
        label = f"{name}\n{band_label}" if j == 0 else name
        show_image(fig.add_subplot(grid[0, j]), ql._stretch(drawn.panels[name]["composite"], bounds), label)
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
    drawn.path = write_png(fig, path)
    return drawn


# ----------------------------------------------------------------------------- run folders

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
    and both are placed on the larger support (model.degradation.on_support) before they are compared; band
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
    (docs/data.md, "Scaling rule": the reference divided by its own power of ten, a run's output by its run's factor, a
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
