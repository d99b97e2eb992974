"""Band tables of common multispectral sensors, band-range files, and the SRF built from them.

Each band is (name, low_nm, high_nm): its nominal spectral range in nanometres. ``srf_from_sensor``
turns bands into an SRF matrix (C x Cm, rows = HSI bands, columns = MSI bands, columns summing to 1)
with Gaussian responses of FWHM = high - low (``srf_from_bands``). Multispectral sets and panchromatic
bands are separate entries ('gf2_pms' vs 'gf2_pan'), since an HR-MSI holds one or the other.
"""
import logging
import re
from dataclasses import dataclass

import numpy as np

from imagery.errors import DataError
from imagery.spectral_response import hsi_range, srf_from_bands
from imagery.tables import numeric_rows, read_cells

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sensor:
    """A sensor's band set: ``bands`` is a tuple of (band_name, low_nm, high_nm); ``source`` the
    document the ranges come from."""
    name: str
    bands: tuple
    source: str


def _centre_width(bands):
    """(name, centre, width) -> (name, low, high)."""
    return tuple((name, centre - width / 2, centre + width / 2) for name, centre, width in bands)


_WV_SOURCE = "DigitalGlobe, WorldView-2 data sheet, multispectral bands"
_WORLDVIEW_VNIR = (("coastal", 400, 450), ("blue", 450, 510), ("green", 510, 580), ("yellow", 585, 625),
                   ("red", 630, 690), ("red_edge", 705, 745), ("nir1", 770, 895), ("nir2", 860, 1040))
_SENTINEL2 = _centre_width((("B1", 443, 20), ("B2", 490, 65), ("B3", 560, 35), ("B4", 665, 30),
                            ("B5", 705, 15), ("B6", 740, 15), ("B7", 783, 20), ("B8", 842, 115),
                            ("B8A", 865, 20), ("B9", 945, 20), ("B10", 1375, 30), ("B11", 1610, 90),
                            ("B12", 2190, 180)))
_OLI_SOURCE = ("USGS, Landsat 8 (L8) Data Users Handbook, OLI spectral bands (Landsat 9's OLI-2 has the "
               "same bands)")
_OLI_MS = (("coastal", 433, 453), ("blue", 450, 515), ("green", 525, 600), ("red", 630, 680),
           ("nir", 845, 885), ("swir1", 1560, 1660), ("swir2", 2100, 2300))
_OLI_PAN = (("pan", 500, 680),)
_OLI_CIRRUS = (("cirrus", 1360, 1390),)
_ZY1_SOURCE = ("ZY-1 02D/02E VNIC band ranges in the order of the data files, as given in the PFS2C2 "
               "authors' real-data tables (Jia et al., IEEE JSTARS 2025, doi 10.1109/JSTARS.2025.3562278)")
# File order is not spectral order: the four classic bands come first, the four added ones after.
_ZY1 = (("blue", 452, 521), ("green", 522, 607), ("red", 635, 694), ("nir", 776, 895),
        ("coastal", 416, 452), ("yellow", 591, 633), ("red_edge", 708, 752), ("nir2", 871, 1047))
_GF_SOURCE = "CRESDA (China Centre for Resources Satellite Data and Application), GF-1 / GF-2 PMS camera specifications"
_GF_MS = (("blue", 450, 520), ("green", 520, 590), ("red", 630, 690), ("nir", 770, 890))
_GF_PAN = (("pan", 450, 900),)
_ALI_SOURCE = "USGS, EO-1 Advanced Land Imager (ALI) documentation, band designations"
_ALI_MS = (("MS-1'", 433, 453), ("MS-1", 450, 515), ("MS-2", 525, 605), ("MS-3", 630, 690),
           ("MS-4", 775, 805), ("MS-4'", 845, 890), ("MS-5'", 1200, 1300), ("MS-5", 1550, 1750),
           ("MS-7", 2080, 2350))
_ALI_PAN = (("pan", 480, 690),)

_WV_PAN = (("pan", 450, 800),)
_PLANET_SOURCE = ("Planet, PlanetScope 8-band asset (SuperDove, PSB.SD): band order and wavelength ranges, as "
                  "delivered in the GeoTIFF's band order")
_SUPERDOVE = (("coastal_blue", 431, 452), ("blue", 465, 515), ("green_i", 513, 549), ("green", 547, 583),
              ("yellow", 600, 620), ("red", 650, 680), ("rededge", 697, 713), ("nir", 845, 885))
_PLEIADES_SOURCE = "Airbus Defence and Space, Pleiades imagery user guide, spectral bands of Pleiades 1A/1B"
_PLEIADES_MS = (("blue", 430, 550), ("green", 500, 620), ("red", 590, 710), ("nir", 740, 940))
_PLEIADES_PAN = (("pan", 470, 830),)
_PRISMA_PAN = (("pan", 400, 700),)
_RGB_SOURCE = ("no document: the visible range cut in thirds, for a camera whose response is not published (e.g. "
               "the Houston 2018 RGB); its real bands overlap and differ, so learn the SRF (--isCal_SRF Yes)")
_RGB = (("blue", 400, 500), ("green", 500, 600), ("red", 600, 700))

SENSORS = {
    "worldview2": Sensor("WorldView-2 multispectral", _WORLDVIEW_VNIR, _WV_SOURCE),
    "worldview3": Sensor("WorldView-3 VNIR multispectral", _WORLDVIEW_VNIR,
                         "Maxar, WorldView-3 data sheet, multispectral (VNIR) bands: the WorldView-2 ranges"),
    "sentinel2": Sensor("Sentinel-2 MSI", _SENTINEL2,
                        "ESA, Sentinel-2 User Handbook, MSI band central wavelengths and bandwidths"),
    "landsat8_oli": Sensor("Landsat-8/9 OLI multispectral (B1-B7)", _OLI_MS, _OLI_SOURCE),
    "landsat8_oli_all": Sensor("Landsat-8/9 OLI, all nine bands in band-number order",
                               _OLI_MS + _OLI_PAN + _OLI_CIRRUS, _OLI_SOURCE),
    "landsat8_pan": Sensor("Landsat-8/9 OLI panchromatic (B8)", _OLI_PAN, _OLI_SOURCE),
    "zy1_02d": Sensor("ZY-1 02D/02E VNIC multispectral", _ZY1, _ZY1_SOURCE),
    "gf2_pms": Sensor("GF-1/GF-2 PMS multispectral", _GF_MS, _GF_SOURCE),
    "gf2_pan": Sensor("GF-1/GF-2 PMS panchromatic", _GF_PAN, _GF_SOURCE),
    "ali": Sensor("EO-1 ALI multispectral", _ALI_MS, _ALI_SOURCE),
    "ali_pan": Sensor("EO-1 ALI panchromatic", _ALI_PAN, _ALI_SOURCE),
    "worldview2_pan": Sensor("WorldView-2/3 panchromatic", _WV_PAN, "DigitalGlobe / Maxar, WorldView-2 and "
                             "WorldView-3 data sheets, panchromatic band"),
    "planetscope_superdove": Sensor("PlanetScope SuperDove (PSB.SD), 8 bands", _SUPERDOVE, _PLANET_SOURCE),
    "pleiades": Sensor("Pleiades 1A/1B multispectral", _PLEIADES_MS, _PLEIADES_SOURCE),
    "pleiades_pan": Sensor("Pleiades 1A/1B panchromatic", _PLEIADES_PAN, _PLEIADES_SOURCE),
    "prisma_pan": Sensor("PRISMA panchromatic camera (5 m)", _PRISMA_PAN, "ASI, PRISMA mission description: "
                         "panchromatic camera, 400-700 nm"),
    "rgb_camera": Sensor("a generic RGB camera (nominal)", _RGB, _RGB_SOURCE),
}
# The same instruments under their sister satellites' names.
SENSORS.update({"worldview3_pan": SENSORS["worldview2_pan"], "landsat9_oli": SENSORS["landsat8_oli"],
                "landsat9_oli_all": SENSORS["landsat8_oli_all"], "landsat9_pan": SENSORS["landsat8_pan"], "zy1_02e": SENSORS["zy1_02d"],
                "gf1_pms": SENSORS["gf2_pms"], "gf1_pan": SENSORS["gf2_pan"]})


def _plain(name):
    """A name without case or punctuation, so 'WorldView-2' finds 'worldview2'."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _describe(bands):
    return ", ".join(f"{i} {name} ({low:g}-{high:g} nm)" for i, (name, low, high) in enumerate(bands, 1))


def select_bands(bands, select, source):
    """The bands named in ``select``, in that order.

    ``bands``: list of (name, low_nm, high_nm); ``select``: None (all bands), a comma-separated string
    or a list of band names (case-insensitive) or 1-based indices, e.g. "blue,green,red,nir1" or
    "2,3,5,7" (``--msi_bands_select``: the bands the HR-MSI file holds, in its order). Raises DataError
    naming ``source`` for an unknown name or index (listing the bands) or a band given twice.
    """
    bands = [tuple(b) for b in bands]
    if select is None:
        return bands
    items = [s.strip() for s in select.split(",")] if isinstance(select, str) else [str(s).strip() for s in select]
    if not items or "" in items:
        raise DataError(f"{source}: --msi_bands_select {select!r} has an empty entry; list band names or 1-based "
                     f"indices separated by commas, from: {_describe(bands)}")
    by_name = {name.lower(): i for i, (name, _, _) in enumerate(bands)}
    chosen = []
    for item in items:
        if item.isdigit() and 1 <= int(item) <= len(bands):
            index = int(item) - 1
        elif item.lower() in by_name:
            index = by_name[item.lower()]
        else:
            raise DataError(f"{source}: no band {item!r} (--msi_bands_select); its bands are: {_describe(bands)}")
        if index in chosen:
            raise DataError(f"{source}: band {bands[index][0]!r} selected twice in --msi_bands_select {select!r}")
        chosen.append(index)
    return [bands[i] for i in chosen]


def sensor_bands(name, select=None):
    """Bands (list of (band_name, low_nm, high_nm)) of sensor ``name`` (a key of ``SENSORS``, case and
    punctuation ignored), optionally only those in ``select`` (see ``select_bands``).

    Raises DataError for an unknown sensor (listing the known ones) or band.
    """
    known = {_plain(key): key for key in SENSORS}
    key = known.get(_plain(name))
    if key is None:
        raise DataError(f"--msi_sensor {name!r}: unknown sensor; known sensors: {', '.join(sorted(SENSORS))} "
                     "(or give the band ranges with --msi_bands FILE)")
    return select_bands(SENSORS[key].bands, select, f"--msi_sensor {key}")


def band_ranges(name, select=None):
    """The (low_nm, high_nm) ranges of ``sensor_bands(name, select)``, as ``srf_from_bands`` takes them."""
    return [(low, high) for _, low, high in sensor_bands(name, select)]


def read_band_ranges(path):
    """Band ranges from a file (``--msi_bands FILE``): list of (band_name, low_nm, high_nm).

    A text (.csv/.txt, ``,`` ``;`` tab or blank separated) or Excel (.xls/.xlsx) table of one row per
    band: low and high in nm, optionally after a name column, optionally below a header row. Unnamed
    bands are called 'band 1', 'band 2', ... Raises DataError naming the file: unreadable, a cell that
    is empty or not a number, not two range columns, low >= high, non-finite values, or values that
    look like micrometres (all below 30).
    """
    cells = read_cells(path, "band table")
    first = 0 if cells.header() is None else 1
    rows = cells.rows[first:]
    if not rows:
        raise DataError(f"{path}: no band rows; give one row per MSI band: [name,] low_nm, high_nm")
    # An empty cell would count as 0 (an SRF table's rule) and surface as "low >= high 0".
    empty = cells.find(lambda v: v is None, first)
    if empty is not None:
        raise DataError(f"{path}: {cells.where(*empty)} is empty; give every band a low "
                     "and a high wavelength (nm), optionally after its name")
    named = all(isinstance(row[0], str) for row in rows)
    names = [row[0] for row in rows] if named else [f"band {i}" for i in range(1, len(rows) + 1)]
    skip = int(named)
    numbers = numeric_rows(cells.columns_from(skip), first, path, "band table")
    if numbers.shape[1] != 2:
        raise DataError(f"{path}: {numbers.shape[1]} numeric column(s); a band table has two, low and high (nm), "
                     "optionally after a name column")
    low, high = numbers[:, 0], numbers[:, 1]
    if not np.all(np.isfinite(numbers)):
        raise DataError(f"{path}: the band table holds NaN or Inf; give each band's low and high wavelength in nm")
    bad = np.flatnonzero(low >= high)
    if bad.size:
        i = bad[0]
        raise DataError(f"{path}: band {names[i]!r} has low {low[i]:g} >= high {high[i]:g}; each row is low, high (nm)")
    if numbers.max() < 30:
        raise DataError(f"{path}: band ranges {numbers.min():g}-{numbers.max():g} look like micrometres; give "
                     "nanometres (multiply by 1000)")
    return [(str(n), float(lo), float(hi)) for n, lo, hi in zip(names, low, high)]


def srf_from_sensor(bands, hsi_wavelengths, hsi_fwhm=None, source=""):
    """SRF (C x Cm, columns sum to 1) of MSI ``bands`` on the HSI bands, and the band names.

    ``bands``: list of (name, low_nm, high_nm); ``hsi_wavelengths``: C band centres (nm, strictly
    increasing); ``hsi_fwhm`` (nm, optional) widens the range the HSI is taken to cover by half a FWHM
    at each end. Each band is a Gaussian of FWHM = high - low centred on the band, kept within one
    FWHM of its centre (``srf_from_bands``), so every support is one run of HSI bands.
    Raises DataError (naming ``source``) listing every band that covers no HSI band centre, with the
    advice to drop it with --msi_bands_select. A band partly outside the HSI range is logged as a
    warning (the HSI cannot reproduce that part of it).
    """
    wl = np.asarray(hsi_wavelengths, dtype=np.float64).ravel()
    if wl.size < 2 or not np.all(np.isfinite(wl)) or np.any(np.diff(wl) <= 0):
        raise DataError(f"{source}: the HSI band centres must be at least 2 finite, strictly increasing values (nm)")
    names = [b[0] for b in bands]
    ranges = np.array([b[1:] for b in bands], dtype=np.float64).reshape(-1, 2)
    covers = (wl[:, None] >= ranges[:, 0]) & (wl[:, None] <= ranges[:, 1])
    empty = np.flatnonzero(~covers.any(axis=0))
    if empty.size:
        listed = ", ".join(f"{names[j]} ({ranges[j, 0]:g}-{ranges[j, 1]:g} nm)" for j in empty)
        raise DataError(f"{source}: MSI band(s) {listed} cover no HSI band centre (the HSI bands run from "
                     f"{wl[0]:g} to {wl[-1]:g} nm); drop them with --msi_bands_select, keeping the bands "
                     "the HR-MSI holds")
    low, high = hsi_range(wl, hsi_fwhm)
    for j in np.flatnonzero((ranges[:, 0] < low) | (ranges[:, 1] > high)):
        log.warning("%s: MSI band %s (%g-%g nm) extends beyond the HSI range %g-%g nm; its response is cut "
                    "there", source, names[j], ranges[j, 0], ranges[j, 1], low, high)
    return srf_from_bands(wl, ranges, shape="gaussian"), names


def check_band_count(n_bands, n_image_bands, image_path, source):
    """DataError unless the band table (``n_bands``, from ``source``) matches the HR-MSI's band count."""
    if n_bands != n_image_bands:
        raise DataError(f"{image_path}: the HR-MSI has {n_image_bands} bands but {source} gives {n_bands}; "
                     f"pick the {n_image_bands} bands the image holds, in its order, with --msi_bands_select "
                     "(band names or 1-based indices, e.g. --msi_bands_select 2,3,4,5)")
