"""Quick-look figure of a fusion run: colour composites of the inputs and the result, the learned PSF
and the learned spectral response.

Numpy cubes are H x W x C (rows, columns, bands). Importing this module does no work and does not
import matplotlib; ``save_quicklook`` draws on matplotlib's Agg canvas without touching the
global (pyplot) backend.
"""
import math
import os
import secrets
import warnings

import numpy as np

# Centre wavelengths (nm) shown as red, green and blue in a true-colour composite.
TRUE_COLOUR_NM = (640.0, 550.0, 470.0)
# A target counts as covered when an HSI band lies within this distance of it (nm): more than
# half the spacing of any hyperspectral grid, less than the gap between two of the targets.
TRUE_COLOUR_TOLERANCE_NM = 25.0
# Fallback composite: positions along the spectral range (0 = first band / shortest wavelength)
# shown as red, green and blue, longest as red as in true colour.
SPREAD_POSITIONS = (5.0 / 6.0, 0.5, 1.0 / 6.0)
# Composites are shown at most this many pixels per side (every k-th row and column).
MAX_DISPLAY_PIXELS = 1000
# Percentiles of the finite values that map to black and white, per channel.
STRETCH_PERCENTILES = (2.0, 98.0)
# Figure geometry: a grid of square panels of PANEL_INCHES at DPI, two rows, three columns
# (four with a reference): PNG of (columns * 400) x 800 pixels.
PANEL_INCHES = 4.0
DPI = 100


def _hsi_bands(wavelengths, n_bands):
    """((r, g, b), true_colour) for an HSI of ``n_bands`` bands at ``wavelengths`` (nm, or None)."""
    if wavelengths is None:
        if n_bands is None:
            raise ValueError("composite_bands needs the band wavelengths or the number of bands (n_bands)")
        if isinstance(n_bands, bool) or not isinstance(n_bands, (int, np.integer)) or n_bands < 1:
            raise ValueError(f"n_bands must be a positive integer; got {n_bands!r}")
        positions = np.rint((n_bands - 1) * np.asarray(SPREAD_POSITIONS)).astype(int)
        return tuple(int(i) for i in positions), False
    wl = np.asarray(wavelengths, dtype=np.float64)
    if wl.ndim != 1 or wl.size == 0 or not np.all(np.isfinite(wl)):
        raise ValueError(
            f"wavelengths must be a non-empty 1-D array of finite values in nm; got shape {wl.shape}"
        )
    if n_bands is not None and wl.size != n_bands:
        raise ValueError(
            f"{wl.size} wavelengths given for {n_bands} bands: give one wavelength (nm) per band"
        )
    offsets = np.abs(wl[None, :] - np.asarray(TRUE_COLOUR_NM)[:, None])
    nearest = offsets.argmin(axis=1)
    if np.all(offsets[np.arange(3), nearest] <= TRUE_COLOUR_TOLERANCE_NM):
        return tuple(int(i) for i in nearest), True
    targets = wl.min() + (wl.max() - wl.min()) * np.asarray(SPREAD_POSITIONS)
    spread = np.abs(wl[None, :] - targets[:, None]).argmin(axis=1)
    return tuple(int(i) for i in spread), False


def composite_bands(wavelengths, n_bands=None):
    """Indices (r, g, b) of the HSI bands to show as red, green and blue.

    wavelengths: the bands' centre wavelengths in nm (1-D, length C), or None. When every one of
    640, 550 and 470 nm has a band within 25 nm, the nearest bands (true colour); otherwise three
    bands spread over the range, at 5/6, 1/2 and 1/6 of the way from the shortest wavelength to
    the longest (red the longest). Without wavelengths, n_bands (C) is required and the bands at
    5/6, 1/2 and 1/6 of the index range are used, assuming bands ordered by wavelength. A single
    band gives (0, 0, 0), shown in grey. Raises ValueError for non-finite or non-1-D wavelengths,
    a count that differs from n_bands, or neither given.
    """
    return _hsi_bands(wavelengths, n_bands)[0]


def _msi_bands(n_msi, wavelengths, srf):
    """((r, g, b), description) of the MSI bands to show as red, green and blue.

    With wavelengths and an SRF, the bands whose response-weighted centre wavelength (negative
    weights of a learned SRF clipped to 0) is nearest 640, 550 and 470 nm; otherwise the first
    three bands (as blue, green, red: sensors list bands by increasing wavelength), or band 0 in
    grey for an MSI of fewer than three bands.
    """
    if wavelengths is not None and srf is not None:
        weights = np.clip(srf, 0.0, None)
        total = weights.sum(axis=0)
        if np.any(total > 0):
            with np.errstate(invalid="ignore", divide="ignore"):
                centres = np.where(total > 0, wavelengths @ weights / total, np.inf)
            chosen = np.abs(centres[None, :] - np.asarray(TRUE_COLOUR_NM)[:, None]).argmin(axis=1)
            note = "centres " + "/".join(f"{centres[i]:.0f}" for i in chosen) + " nm"
            return tuple(int(i) for i in chosen), note
    if n_msi >= 3:
        return (2, 1, 0), "first three bands"
    return (0, 0, 0), "grey"


def _bounds(img):
    """The 2nd and 98th percentiles of each channel's finite values of an (h, w, 3) image."""
    img = img.astype(np.float64)
    img[~np.isfinite(img)] = np.nan
    with warnings.catch_warnings():
        # An all-NaN channel: its NaN bounds give mid-grey in _stretch, and its pixels are black anyway.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(img.reshape(-1, 3), STRETCH_PERCENTILES, axis=0)


def _stretch(img, bounds=None):
    """Each channel of an (h, w, 3) image mapped linearly from ``bounds`` (default: its own 2nd-98th
    percentiles, ``_bounds``) to [0, 1] and clipped; non-finite pixels black, a channel without
    spread mid-grey."""
    img = img.astype(np.float64)
    finite = np.isfinite(img)
    lo, hi = _bounds(img) if bounds is None else bounds
    span = hi - lo
    spread = span > 0
    out = np.where(spread, (img - lo) / np.where(spread, span, 1.0), 0.5)
    return np.where(finite, np.clip(out, 0.0, 1.0), 0.0)


def _as_cube(x, name, ndim_2_ok=False):
    a = np.asarray(x)
    if ndim_2_ok and a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.size == 0:
        expected = "H x W or H x W x C" if ndim_2_ok else "H x W x C"
        raise ValueError(f"{name} must be a non-empty {expected} array; got shape {a.shape}")
    return a


class CompositeCollector:
    """The colour composite of a cube too large to hold, collected tile by tile for ``save_quicklook``.

    height, width, n_bands: the cube's size (H x W x C); wavelengths: its C band centres in nm, or
    None. Keeps the three bands of ``composite_bands`` at every k-th row and column (k as
    ``save_quicklook`` shows the cube: at most MAX_DISPLAY_PIXELS per side), as float32:
    ``image`` equals ``cube[::k, ::k][:, :, bands]`` once every pixel has been added (NaN before).
    ``add(top, left, tile)`` takes an h x w x C tile at row ``top``, column ``left``. Raises
    ValueError as ``composite_bands`` does, and for a tile that does not fit the cube.
    """

    def __init__(self, height, width, n_bands, wavelengths=None):
        self.shape = (int(height), int(width), int(n_bands))
        self.bands = _hsi_bands(None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64),
                                n_bands)[0]
        self.step = _display_step(height, width)
        self.image = np.full((-(-self.shape[0] // self.step), -(-self.shape[1] // self.step), 3), np.nan,
                             dtype=np.float32)

    def add(self, top, left, tile):
        """Keep the displayed pixels of the h x w x C ``tile`` whose upper-left pixel is (top, left)."""
        tile = np.asarray(tile)
        if (tile.ndim != 3 or tile.shape[2] != self.shape[2] or top < 0 or left < 0
                or top + tile.shape[0] > self.shape[0] or left + tile.shape[1] > self.shape[1]):
            raise ValueError(f"a tile of shape {tile.shape} at row {top}, column {left} does not fit the "
                             f"{' x '.join(map(str, self.shape))} cube")
        k = self.step
        # The first displayed row and column inside the tile: the next multiples of k.
        r0, c0 = -top % k, -left % k
        shown = tile[r0::k, c0::k][:, :, list(self.bands)]
        rows, cols = (top + r0) // k, (left + c0) // k
        self.image[rows:rows + shown.shape[0], cols:cols + shown.shape[1]] = shown


def _check_inputs(lr_hsi, hr_msi, fused, psf, srf, wavelengths, reference, true_psf, true_srf, names):
    lr_hsi = _as_cube(lr_hsi, "lr_hsi")
    hr_msi = _as_cube(hr_msi, "hr_msi", ndim_2_ok=True)
    fused = fused if isinstance(fused, CompositeCollector) else _as_cube(fused, "fused")
    n_hsi, n_msi = lr_hsi.shape[2], hr_msi.shape[2]
    if fused.shape != hr_msi.shape[:2] + (n_hsi,):
        raise ValueError(
            f"fused must be H x W x C = {hr_msi.shape[0]} x {hr_msi.shape[1]} (as hr_msi) x {n_hsi} "
            f"(as lr_hsi); got {fused.shape}"
        )
    if reference is not None:
        reference = np.asarray(reference)
        if reference.shape != fused.shape:
            raise ValueError(
                f"reference must have the fused image's shape {fused.shape}; got {reference.shape}"
            )
    srf = np.asarray(srf, dtype=np.float64)
    if srf.shape != (n_hsi, n_msi):
        raise ValueError(
            f"srf must be C x Cm = {n_hsi} x {n_msi} (HSI bands x MSI bands, columns = MSI bands); "
            f"got {srf.shape}"
        )
    if true_srf is not None:
        true_srf = np.asarray(true_srf, dtype=np.float64)
        if true_srf.shape != srf.shape:
            raise ValueError(f"true_srf must have the learned srf's shape {srf.shape}; got {true_srf.shape}")
    for kernel, name in ((psf, "psf"), (true_psf, "true_psf")):
        if kernel is not None and (np.ndim(kernel) != 2 or np.size(kernel) == 0):
            raise ValueError(f"{name} must be a non-empty k x k array; got shape {np.shape(kernel)}")
    if wavelengths is not None:
        wavelengths = np.asarray(wavelengths, dtype=np.float64)
        if wavelengths.shape != (n_hsi,) or not np.all(np.isfinite(wavelengths)):
            raise ValueError(
                f"hsi_wavelengths must hold {n_hsi} finite values (nm), one per HSI band; "
                f"got shape {wavelengths.shape}"
            )
    if names is not None and len(names) != n_msi:
        raise ValueError(f"msi_band_names must name the {n_msi} MSI bands; got {len(names)} names")
    return lr_hsi, hr_msi, fused, reference, srf, true_srf, wavelengths


def _display_step(height, width):
    """Show every k-th row and column, so an image is at most MAX_DISPLAY_PIXELS per side."""
    return max(1, math.ceil(max(height, width) / MAX_DISPLAY_PIXELS))


def _band_label(bands, wavelengths, names=None):
    if names is not None:
        return "R/G/B = " + "/".join(str(names[i]) for i in bands)
    if wavelengths is not None:
        return "R/G/B = " + "/".join(f"{wavelengths[i]:.0f}" for i in bands) + " nm"
    return "R/G/B = bands " + "/".join(str(i) for i in bands)


def _shown(cube, step, bands):
    """The composite of ``cube`` (an H x W x C array or a CompositeCollector) at every ``step``-th pixel.
    Raises ValueError for a collector built with other bands (other wavelengths)."""
    if not isinstance(cube, CompositeCollector):
        return cube[::step, ::step][:, :, bands]
    if cube.bands != tuple(bands) or cube.step != step:
        raise ValueError(f"the fused composite holds bands {cube.bands} every {cube.step} pixels but the "
                         f"quick-look shows bands {tuple(bands)} every {step}: build the CompositeCollector "
                         "with the same wavelengths")
    return cube.image


def save_quicklook(path, lr_hsi, hr_msi, fused, psf, srf, hsi_wavelengths=None, reference=None,
                   true_psf=None, true_srf=None, msi_band_names=None, title=None):
    """Write a PNG quick-look of one fusion and return ``path``.

    lr_hsi: LR-HSI h x w x C; hr_msi: HR-MSI H x W x Cm (or H x W); fused and reference (optional):
    H x W x C (fused may instead be a CompositeCollector, its composite collected tile by tile from a
    cube too large to hold, built with ``hsi_wavelengths``); any units (the HSI composites share one stretch, the MSI composite has its own). psf: learned PSF, k x k;
    srf: learned spectral response, C x Cm (columns = MSI bands); true_psf, true_srf: the truth
    when known (simulated pairs). hsi_wavelengths: the C band centres in nm, or None.
    msi_band_names: Cm labels for the legend and the MSI composite, or None.

    Top row: colour composites of the LR-HSI (pixel-replicated to H x W), the HR-MSI, the fused
    image and the reference. HSI composites use the bands of ``composite_bands`` (true colour when
    the wavelengths cover 470-640 nm; the panel title says when not); the MSI composite uses the
    bands whose SRF-weighted centre (true_srf if given, else srf) is nearest 640, 550, 470 nm
    when the wavelengths are known, else its first three bands (a 1-band MSI in grey). Each
    channel is stretched between its 2nd and 98th percentiles of finite values, those of the
    reference (else the LR-HSI) for the three HSI composites, so their colours compare; NaN or infinite
    (no-data) pixels are black. Composites are shown at most 1000 pixels per side (every k-th
    pixel); only the three bands shown are read from each cube. Bottom row: the learned PSF as
    an image, the true PSF beside it on the same colour scale, and the SRF curves against
    wavelength (nm) or band index (true SRF dashed in the same colour).

    The figure is (3 or 4 columns x 400) x 800 pixels (4 columns with a reference). It is drawn
    on matplotlib's Agg canvas (the global pyplot backend is untouched) and written to a
    temporary file in the same folder, then renamed, so ``path`` never holds a partial image.
    Raises ValueError for arrays whose shapes do not fit together as above, and OSError when the
    folder cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lr_hsi, hr_msi, fused, reference, srf, true_srf, wl = _check_inputs(
        lr_hsi, hr_msi, fused, psf, srf, hsi_wavelengths, reference, true_psf, true_srf, msi_band_names)
    (h, w), (big_h, big_w) = lr_hsi.shape[:2], hr_msi.shape[:2]
    hsi_rgb, true_colour = _hsi_bands(wl, lr_hsi.shape[2])
    msi_rgb, msi_note = _msi_bands(hr_msi.shape[2], wl, true_srf if true_srf is not None else srf)
    step = _display_step(big_h, big_w)
    hsi_label = _band_label(hsi_rgb, wl)
    if not true_colour:
        reason = "no band near 470/550/640 nm" if wl is not None else "no wavelengths"
        hsi_label += f"\n(not true colour: {reason})"

    # Slicing first keeps views; indexing the three bands then copies only what is shown.
    # Pixel replication: display row i of the H x W grid shows LR row i * h // H.
    lr_rows = np.arange(0, big_h, step) * h // big_h
    lr_cols = np.arange(0, big_w, step) * w // big_w
    panels = [
        (lr_hsi[np.ix_(lr_rows, lr_cols, hsi_rgb)], f"LR-HSI {h} x {w}, pixel-replicated\n{hsi_label}"),
        (hr_msi[::step, ::step][:, :, msi_rgb],
         f"HR-MSI {big_h} x {big_w}\n{_band_label(msi_rgb, None, msi_band_names)}\n({msi_note})"),
        (_shown(fused, step, hsi_rgb), f"fused\n{hsi_label}"),
    ]
    if reference is not None:
        panels.append((reference[::step, ::step][:, :, hsi_rgb], f"reference\n{hsi_label}"))

    n_cols = len(panels)
    fig = Figure(figsize=(n_cols * PANEL_INCHES, 2 * PANEL_INCHES), dpi=DPI)
    FigureCanvasAgg(fig)
    # Fixed margins: matplotlib's constrained layout would double the drawing time.
    grid = fig.add_gridspec(2, n_cols, left=0.05, right=0.98, bottom=0.07, top=0.86 if title else 0.9,
                            wspace=0.3, hspace=0.35)
    # The HSI-band panels share one stretch (the reference's, else the LR-HSI's) so their colours
    # compare; the MSI panel has bands of its own.
    hsi_bounds = _bounds(panels[-1][0] if reference is not None else panels[0][0])
    for i, (img, label) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(_stretch(img, None if i == 1 else hsi_bounds), interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_axis_off()

    kernels = [(np.asarray(psf, dtype=np.float64), "learned PSF")]
    if true_psf is not None:
        kernels.append((np.asarray(true_psf, dtype=np.float64), "true PSF"))
    vmin = min(k.min() for k, _ in kernels)
    vmax = max(k.max() for k, _ in kernels)
    for i, (kernel, label) in enumerate(kernels):
        ax = fig.add_subplot(grid[1, i])
        image = ax.imshow(kernel, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{label} ({kernel.shape[0]} x {kernel.shape[1]})", fontsize=9)
        ax.set_xticks(range(kernel.shape[1]))
        ax.set_yticks(range(kernel.shape[0]))
        fig.colorbar(image, ax=ax, shrink=0.8)

    ax = fig.add_subplot(grid[1, len(kernels):])
    x = wl if wl is not None else np.arange(srf.shape[0])
    names = msi_band_names if msi_band_names is not None else [f"band {k}" for k in range(srf.shape[1])]
    for k in range(srf.shape[1]):
        colour = f"C{k % 10}"
        ax.plot(x, srf[:, k], color=colour, label=str(names[k]))
        if true_srf is not None:
            ax.plot(x, true_srf[:, k], color=colour, linestyle="--")
    ax.set_xlabel("wavelength (nm)" if wl is not None else "HSI band index")
    ax.set_ylabel("response")
    ax.set_title("learned SRF" + (" (true: dashed)" if true_srf is not None else ""), fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)

    folder, name = os.path.split(os.path.abspath(path))
    # Created by open() rather than mkstemp so the file gets the usual (umask) permissions.
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
