"""Rebuild the real scenes of data/ from the files as their sources published them.

    python data/build_real_scenes.py SOURCE_FOLDER [--peak P] [--out FOLDER]

SOURCE_FOLDER holds the published files, one sub-folder per scene, as listed in ``SOURCES`` (each
with the repository, commit and SHA-1 it was taken from; data/README.md cites the data's owners).
The script checks each file's SHA-1, then writes, for every scene, ``data/<name>/<name>.mat``
(MATLAB v5, compressed) with:

* ``REF``: the reference cube, float32, H x W x C (rows, columns, bands), values in [0, 1]: the
  published integers divided by the scene's largest value (scaled to ``--peak``, default 1), the normalisation
  of the fusion literature; small negative integers (sensor noise) are set to 0 first. The level matters: the
  deep methods are not invariant to the data's scale (docs/results.md), and a peak of 1 is
  what the project's loader keeps as it is (the power-of-ten rule of ``imagery.radiometry`` gives 1);
* ``wavelengths``: the band centres in nm (1 x C), ``bands``: the kept bands' 1-based numbers in the
  sensor's full band list, ``scale``: what the published integers were divided by;
* ``gt``: the scene's land-cover labels on the same grid where it has them (0 = unlabelled),

and ``data/spectral_response/<name>.csv`` (in ``--out`` when given), the SRF of the multispectral sensor
simulated with it (a header row of the MSI band names, then rows = the cube's bands, columns = MSI bands;
Gaussian responses of FWHM = each band's width built by ``imagery.sensors.srf_from_sensor``), except for
Houston, whose SRF is the original UDALN code's ``houston18.xls``. It also writes the Houston real pair
(``data/real_pair_example/``: the LR-HSI and the real RGB image as GeoTIFFs shaped like delivered products)
and its labels (``data/ground_truth/houston18_labels.tif``), and prints which 46 of Houston's 48 bands
``houston18.xls`` fits best.
"""
import argparse
import hashlib
import os
import sys

import numpy as np
import scipy.io
from rasterio.transform import from_origin

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from imagery.sensors import SENSORS, srf_from_sensor  # noqa: E402
from imagery.spectral_response import load_srf  # noqa: E402
from imagery.writers import write_geotiff  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Each scene's largest value after scaling (--peak; another value shows how the methods depend on the level).
PEAK = 1.0

# (sub-folder, file, SHA-1 of the published file, variable of the cube, variable of the labels or None)
SOURCES = {
    "houston18": ("houston2018_crop128", "houston_dataset.mat", "82d798ae9f9882c3599046f94e4049a5f9c152ff",
                  "hyprImg", None),
    "indian_pines_roi70": ("indian_pines_roi70", "Indian_subset.mat", "8acfe4c563be1fbd52c68680697b7a250bed5f1b",
                           "Indian_subset", "gt"),
    "salinas_a": ("salinasA", "SalinasA_corrected.mat", "1a60edb1c034aa298fb55fbc83f2766e734c62f2",
                  "salinasA_corrected", None),
    "cave_toy": ("cave_chart_and_stuffed_toy_256", "chart_and_stuffed_toy_ms_256.mat",
                 "23888ec8ade61357c566ebac315010ccdb159b8d", "NRD", None),
}

# ITRES CASI-1500 of the GRSS Data Fusion Contest 2018: 48 bands evenly spaced over 380-1050 nm.
HOUSTON_WAVELENGTHS = np.linspace(380.0, 1050.0, 48)
# houston18.xls has 46 rows; its responses fit the contest's bands 3-48 (``houston_band_fit``).
HOUSTON_FIRST_BAND = 3
# A central 120 x 120 crop of the 128 x 128 scene: 120 is a multiple of 4, 5 and 8, so the papers' r = 5
# and r = 8 and the RGB pair's r = 4 all see the same ground.
HOUSTON_CROP = 120
# AVIRIS: centres taken as evenly spaced over 400-2500 nm, over the 224 channels of Salinas and over the 220
# of the Indian Pines distribution (its exact band list is not published with it); the "corrected" scenes
# drop the water-absorption channels (1-based, inclusive ranges), as their distributors did.
AVIRIS_CHANNELS = {"indian_pines_roi70": 220, "salinas_a": 224}
AVIRIS_DROPPED = {"indian_pines_roi70": ((104, 108), (150, 163), (220, 220)),
                  "salinas_a": ((108, 112), (154, 167), (224, 224))}
# CAVE: 31 bands, 400-700 nm every 10 nm.
CAVE_WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
# The Sentinel-2 bands an AVIRIS scene is paired with: the 10 m and 20 m land bands (B1 and B9 are 60 m
# atmospheric bands, B10 falls in a dropped water-absorption range).
SENTINEL2_LAND = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
# CAVE is usually paired with a consumer camera's RGB response (Nikon D700), which is not published with
# the data: WorldView-2's blue, green and red ranges stand in for it.
CAVE_RGB = ("blue", "green", "red")

# The real pair's nominal georeference: the crop's position in the contest's tiles is not published, so
# the grid is placed in the contest's CRS (NAD83 / UTM zone 15N) at a documented, nominal origin near the
# University of Houston; the HSI pixels are about 2 m, the RGB pixels 0.5 m, upper-left corners equal.
PAIR_CRS = "EPSG:26915"
PAIR_ORIGIN = (272000.0, 3290000.0)
PAIR_HSI_PIXEL, PAIR_RGB_PIXEL = 2.0, 0.5


def sha1(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def read_source(folder, name):
    sub, file, digest, key, labels = SOURCES[name]
    path = os.path.join(folder, sub, file)
    found = sha1(path)
    if found != digest:
        sys.exit(f"{path}: SHA-1 {found} differs from the published file's {digest}")
    return scipy.io.loadmat(path), key, labels


def kept_bands(wavelengths, dropped):
    """1-based numbers of the channels kept after removing the ``dropped`` inclusive ranges."""
    numbers = np.arange(1, wavelengths.size + 1)
    keep = np.ones(wavelengths.size, bool)
    for low, high in dropped:
        keep[low - 1:high] = False
    return numbers[keep]


def houston_band_fit(srf, wavelengths=HOUSTON_WAVELENGTHS):
    """For each first band b (1-based) of 46 consecutive Houston bands: the RMS difference (nm) between
    the response-weighted centre of each houston18.xls column and the WorldView-2 band's nominal centre."""
    centres = np.array([(low + high) / 2 for _, low, high in SENSORS["worldview2"].bands])
    fit = {}
    for first in range(1, wavelengths.size - srf.shape[0] + 2):
        wl = wavelengths[first - 1:first - 1 + srf.shape[0]]
        weighted = (srf * wl[:, None]).sum(axis=0) / srf.sum(axis=0)
        fit[first] = float(np.sqrt(np.mean((weighted - centres) ** 2)))
    return fit


def save_scene(name, cube, wavelengths, bands, peak, out, labels=None, srf=None, srf_names=()):
    """``out``/NAME/NAME.mat (the module docstring's variables, the cube scaled to ``peak``) and, given an
    SRF, ``out``/spectral_response/NAME.csv."""
    cube = np.clip(cube.astype(np.float64), 0, None)
    scale = float(cube.max() / peak)
    variables = {"REF": (cube / scale).astype(np.float32), "wavelengths": wavelengths[None, :],
                 "bands": bands[None, :].astype(np.int16), "scale": scale}
    if labels is not None:
        variables["gt"] = labels.astype(np.uint8)
    os.makedirs(os.path.join(out, name), exist_ok=True)
    scipy.io.savemat(os.path.join(out, name, f"{name}.mat"), variables, do_compression=True)
    if srf is not None:
        os.makedirs(os.path.join(out, "spectral_response"), exist_ok=True)
        np.savetxt(os.path.join(out, "spectral_response", f"{name}.csv"), srf, delimiter=",", fmt="%.8f",
                   header=",".join(srf_names), comments="")
    print(f"{name}: {cube.shape}, divided by {scale:g}, {wavelengths[0]:.1f}-{wavelengths[-1]:.1f} nm")


def sensor_srf(sensor, names, wavelengths):
    """The SRF (C x Cm) of the ``names`` bands of ``sensor`` on the HSI band centres, and the band names."""
    bands = [band for band in SENSORS[sensor].bands if band[0] in names]
    srf, _ = srf_from_sensor(bands, wavelengths, source=sensor)
    return srf, [b[0] for b in bands]


def build_houston(folder, peak, out):
    mat, key, _ = read_source(folder, "houston18")
    hsi, rgb, labels = mat[key], mat["rgbImg"], mat["clasLabs"]
    srf = load_srf(os.path.join(HERE, "spectral_response", "houston18.xls"), None, 46).response
    fit = houston_band_fit(srf)
    print("houston18.xls fit (first band: RMS nm):", {b: round(v, 1) for b, v in fit.items()})
    assert min(fit, key=fit.get) == HOUSTON_FIRST_BAND
    bands = np.arange(HOUSTON_FIRST_BAND, 49)
    start = (hsi.shape[0] - HOUSTON_CROP) // 2
    crop = hsi[start:start + HOUSTON_CROP, start:start + HOUSTON_CROP, bands - 1]
    save_scene("houston18", crop, HOUSTON_WAVELENGTHS[bands - 1], bands, peak, out)
    if out == HERE:
        write_real_pair(hsi, rgb, labels)


def write_real_pair(hsi, rgb, labels):
    """The real pair of data/real_pair_example/ and its labels, as GeoTIFFs (the module docstring)."""
    west, north = PAIR_ORIGIN
    hsi_grid = from_origin(west, north, PAIR_HSI_PIXEL, PAIR_HSI_PIXEL)
    rgb_grid = from_origin(west, north, PAIR_RGB_PIXEL, PAIR_RGB_PIXEL)
    pair = os.path.join(HERE, "real_pair_example")
    os.makedirs(pair, exist_ok=True)
    write_geotiff(os.path.join(pair, "houston18_lr_hsi.tif"), hsi, PAIR_CRS, hsi_grid, nodata=0,
                  band_names=[f"{w:.2f} nm" for w in HOUSTON_WAVELENGTHS], wavelengths=HOUSTON_WAVELENGTHS,
                  dtype="uint16")
    write_geotiff(os.path.join(pair, "houston18_hr_rgb.tif"), rgb, PAIR_CRS, rgb_grid, nodata=0,
                  band_names=["red", "green", "blue"], dtype="uint8")
    write_geotiff(os.path.join(HERE, "ground_truth", "houston18_labels.tif"), labels[:, :, None], PAIR_CRS,
                  rgb_grid, band_names=["land-cover class, 0 = unlabelled"], dtype="uint8")


def build_aviris(folder, name, peak, out):
    mat, key, labels = read_source(folder, name)
    channels = np.linspace(400.0, 2500.0, AVIRIS_CHANNELS[name])
    bands = kept_bands(channels, AVIRIS_DROPPED[name])
    wavelengths = channels[bands - 1]
    if bands.size != mat[key].shape[2]:
        sys.exit(f"{name}: {bands.size} bands kept, the file has {mat[key].shape[2]}")
    srf, names = sensor_srf("sentinel2", SENTINEL2_LAND, wavelengths)
    save_scene(name, mat[key], wavelengths, bands, peak, out, mat[labels] if labels else None, srf, names)


def build_cave(folder, peak, out):
    mat, key, _ = read_source(folder, "cave_toy")
    srf, names = sensor_srf("worldview2", CAVE_RGB, CAVE_WAVELENGTHS)
    save_scene("cave_toy", mat[key], CAVE_WAVELENGTHS, np.arange(1, 32), peak, out, srf=srf, srf_names=names)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python data/build_real_scenes.py", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="the folder of the published files, one sub-folder per scene")
    parser.add_argument("--peak", type=float, default=PEAK,
                        help="each scene's largest value after scaling (default 1)")
    parser.add_argument("--out", default=HERE,
                        help="where the scenes and their SRFs go (default: data/; elsewhere the real pair is not "
                             "written, and houston18.xls must be copied beside them to fuse Houston)")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    build_houston(args.source, args.peak, out)
    for name in AVIRIS_DROPPED:
        build_aviris(args.source, name, args.peak, out)
    build_cave(args.source, args.peak, out)


if __name__ == "__main__":
    main()
