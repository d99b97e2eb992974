"""Tests for imagery.spectral_response and imagery.sensors: SRF tables as people have them, resampling
to the HSI bands, sensor band tables, and the SRF built from a sensor."""
import logging
import re
import struct
from pathlib import Path

import h5py
import numpy as np
import openpyxl
import pytest
import scipy.io
from conftest import SYNTHETIC_SRF

import data_loader as dl
from config import get_args
from data_loader import DataError
from imagery import sensors
from imagery import spectral_response as sr
from imagery import tables

ROOT = Path(__file__).resolve().parents[2]
AVIRIS_LIKE = np.linspace(400.0, 2500.0, 224)  # 224 bands, 9.4 nm apart


# ----------------------------------------------------------------------------- helpers

def raises_data_error(path, phrase):
    """pytest.raises for a DataError whose message names ``path`` and matches ``phrase``."""
    return pytest.raises(DataError, match=f"(?s)(?=.*{re.escape(str(path))}).*{phrase}")


def _record(opcode, data):
    return struct.pack("<HH", opcode, len(data)) + data


def _bof(kind):
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0, 0, 0, 0))


def write_xls(path, cells, sheet="spec"):
    """A BIFF8 .xls workbook of one sheet holding ``cells`` ({(row, col): float, str or None (a blank
    cell)}, 0-based), written record by record: BOF, BOUNDSHEET, EOF for the workbook, then the
    sheet's BOF, NUMBER / LABEL / BLANK records, EOF. xlrd reads such a bare BIFF stream."""
    body = _bof(0x0010)
    for (r, c), value in cells.items():
        if value is None:
            body += _record(0x0201, struct.pack("<HHH", r, c, 0))
        elif isinstance(value, str):
            raw = value.encode("latin-1")
            body += _record(0x0204, struct.pack("<HHHHB", r, c, 0, len(raw), 0) + raw)
        else:
            body += _record(0x0203, struct.pack("<HHHd", r, c, 0, value))
    body += _record(0x000A, b"")
    name = sheet.encode("latin-1")
    globals_size = len(_bof(5)) + 4 + 8 + len(name) + 4
    head = (_bof(0x0005) + _record(0x0085, struct.pack("<IBBBB", globals_size, 0, 0, len(name), 0) + name)
            + _record(0x000A, b""))
    Path(path).write_bytes(head + body)


def write_xlsx(path, rows, sheet="Sheet1"):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(list(row))
    book.save(path)


def matrix_cells(matrix, header=None, blank_zeros=False):
    """{(row, col): value} of ``matrix`` below an optional header; zeros left out when ``blank_zeros``."""
    cells = {(0, j): name for j, name in enumerate(header or [])}
    top = 1 if header else 0
    for (i, j), v in np.ndenumerate(matrix):
        if not (blank_zeros and v == 0):
            cells[(top + i, j)] = float(v)
    return cells


def write_v73(path, arrays):
    """MATLAB -v7.3 MAT-file: HDF5 with the MATLAB userblock, arrays stored transposed (column-major)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            f.create_dataset(name, data=np.ascontiguousarray(np.asarray(array, dtype=np.float64).T))
            f[name].attrs["MATLAB_class"] = np.bytes_("double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Feb 29 12:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def banded_response(bands, supports, rng):
    """bands x len(supports) positive response, zero outside each inclusive support."""
    out = np.zeros((bands, len(supports)))
    for j, (lo, hi) in enumerate(supports):
        out[lo:hi + 1, j] = rng.uniform(0.2, 1.0, hi - lo + 1)
    return out


def fine_response(grid, centres, widths):
    """Smooth 'measured' responses on a fine grid: flat-topped bumps (super-Gaussians) with a small
    pedestal and zero beyond 2.5 widths, like a published SRF table."""
    d = (grid[:, None] - np.asarray(centres)) / (np.asarray(widths) / 2)
    return np.where(np.abs(d) < 2.5, np.exp(-np.abs(d) ** 6) + 0.002, 0.0)


def assert_contiguous_columns(srf):
    for j in range(srf.shape[1]):
        rows = np.flatnonzero(srf[:, j] > 0)
        np.testing.assert_array_equal(rows, np.arange(rows[0], rows[-1] + 1))


def data_root(tmp_path, cube, srf_name, write_srf):
    """tmp_path/data/toy/scene.npy and tmp_path/srf/<srf_name> (written by ``write_srf(path)``); CLI args."""
    (tmp_path / "data" / "toy").mkdir(parents=True)
    np.save(tmp_path / "data" / "toy" / "scene.npy", cube)
    (tmp_path / "srf").mkdir()
    write_srf(tmp_path / "srf" / srf_name)
    return ["--default_datapath", str(tmp_path / "data"), "--sp_root_path", str(tmp_path / "srf"),
            "--data_name", "toy", "--device", "cpu"]


@pytest.fixture
def rng():
    return np.random.default_rng(20240301)


@pytest.fixture
def response40(rng):
    """40 HSI bands x 4 MSI bands, overlapping contiguous supports."""
    return banded_response(40, ((0, 9), (8, 19), (18, 29), (28, 39)), rng)


WL40 = np.arange(400.0, 800.0, 10.0)  # 40 band centres, nm


# ----------------------------------------------------------------------------- sensors

@pytest.mark.parametrize("name", sorted(sensors.SENSORS))
def test_srf_from_every_sensor_on_a_224_band_grid(name):
    bands = sensors.sensor_bands(name)
    srf, names = sensors.srf_from_sensor(bands, AVIRIS_LIKE, source=name)
    assert srf.shape == (224, len(bands))
    assert names == [b[0] for b in bands]
    assert np.all(srf >= 0)
    np.testing.assert_allclose(srf.sum(axis=0), 1.0, rtol=1e-12)
    assert_contiguous_columns(srf)
    centres = np.array([(lo + hi) / 2 for _, lo, hi in bands])
    spacing = AVIRIS_LIKE[1] - AVIRIS_LIKE[0]
    assert np.all(np.abs(AVIRIS_LIKE[srf.argmax(axis=0)] - centres) <= spacing / 2 + 1e-9)
    if srf.shape[1] < 224:
        dl.validate_srf(srf, 224, name)


def test_every_sensor_names_its_source_and_has_named_ordered_bands():
    for key, sensor in sensors.SENSORS.items():
        assert sensor.source, key
        for band in sensor.bands:
            name, low, high = band
            assert isinstance(name, str) and name and low < high, (key, band)


def test_sensor_tables_hold_the_published_ranges():
    assert sensors.sensor_bands("worldview2") == [
        ("coastal", 400, 450), ("blue", 450, 510), ("green", 510, 580), ("yellow", 585, 625),
        ("red", 630, 690), ("red_edge", 705, 745), ("nir1", 770, 895), ("nir2", 860, 1040)]
    assert sensors.sensor_bands("worldview3") == sensors.sensor_bands("worldview2")
    assert sensors.band_ranges("worldview2") == [(low, high) for _, low, high in sensors.sensor_bands("worldview2")]
    s2 = {n: (lo, hi) for n, lo, hi in sensors.sensor_bands("sentinel2")}
    assert list(s2) == ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    assert s2["B8"] == (842 - 57.5, 842 + 57.5) and s2["B12"] == (2100, 2280) and s2["B1"] == (433, 453)
    assert [n for n, _, _ in sensors.sensor_bands("landsat8_oli")] == [
        "coastal", "blue", "green", "red", "nir", "swir1", "swir2"]
    assert [n for n, _, _ in sensors.sensor_bands("landsat8_oli_all")][7:] == ["pan", "cirrus"]
    assert sensors.sensor_bands("landsat8_pan") == [("pan", 500, 680)]
    assert [b[1:] for b in sensors.sensor_bands("zy1_02d")] == [
        (452, 521), (522, 607), (635, 694), (776, 895), (416, 452), (591, 633), (708, 752), (871, 1047)]
    assert sensors.sensor_bands("gf2_pms") == [("blue", 450, 520), ("green", 520, 590), ("red", 630, 690),
                                               ("nir", 770, 890)]
    assert sensors.sensor_bands("gf1_pan") == sensors.sensor_bands("gf2_pan") == [("pan", 450, 900)]
    assert len(sensors.sensor_bands("ali")) == 9 and sensors.sensor_bands("ali_pan") == [("pan", 480, 690)]
    assert sensors.sensor_bands("ali")[0] == ("MS-1'", 433, 453)


def test_sensor_names_ignore_case_and_punctuation():
    assert sensors.sensor_bands("WorldView-2") == sensors.sensor_bands("worldview2")
    assert sensors.sensor_bands("Landsat-9 OLI") == sensors.sensor_bands("landsat8_oli")


def test_select_bands_by_name_and_by_index_in_the_given_order():
    by_name = sensors.sensor_bands("worldview2", "Blue, green,red,NIR1")
    by_index = sensors.sensor_bands("worldview2", "2,3,5,7")
    expected = [("blue", 450, 510), ("green", 510, 580), ("red", 630, 690), ("nir1", 770, 895)]
    assert by_name == by_index == expected
    assert sensors.sensor_bands("sentinel2", ["B8A", 4]) == [("B8A", 855, 875), ("B4", 650, 680)]
    assert sensors.sensor_bands("ali", "MS-4',MS-4") == [("MS-4'", 845, 890), ("MS-4", 775, 805)]


def test_unknown_sensor_lists_the_known_ones():
    with pytest.raises(DataError, match=r"--msi_sensor 'quickbird': unknown sensor; known sensors: .*"
                                        r"gf2_pms.*sentinel2.*worldview2"):
        sensors.sensor_bands("quickbird")


@pytest.mark.parametrize("select, phrase", [
    ("blue,violet", r"no band 'violet' \(--msi_bands_select\); its bands are: 1 coastal \(400-450 nm\), "
                    r"2 blue \(450-510 nm\).*8 nir2 \(860-1040 nm\)"),
    ("9", r"no band '9'"),
    ("0", r"no band '0'"),
    ("blue,2", r"band 'blue' selected twice"),
    ("blue,,red", r"empty entry"),
])
def test_select_bands_errors(select, phrase):
    with pytest.raises(DataError, match=phrase):
        sensors.sensor_bands("worldview2", select)


def test_srf_from_sensor_lists_bands_that_cover_no_hsi_centre():
    vnir = np.linspace(400, 1000, 61)
    with pytest.raises(DataError, match=r"sentinel2: MSI band\(s\) B10 \(1360-1390 nm\), B11 \(1565-1655 nm\), "
                                        r"B12 \(2100-2280 nm\) cover no HSI band centre.*400 to 1000 nm.*"
                                        r"--msi_bands_select"):
        sensors.srf_from_sensor(sensors.sensor_bands("sentinel2"), vnir, source="sentinel2")
    srf, names = sensors.srf_from_sensor(sensors.sensor_bands("sentinel2", "B2,B3,B4,B8"), vnir)
    assert names == ["B2", "B3", "B4", "B8"] and srf.shape == (61, 4)


def test_srf_from_sensor_warns_about_a_band_partly_outside_the_hsi(caplog):
    hsi = np.linspace(420, 1050, 64)
    with caplog.at_level(logging.INFO):
        sensors.srf_from_sensor(sensors.sensor_bands("worldview2"), hsi, source="wv2")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["wv2: MSI band coastal (400-450 nm) extends beyond the HSI range 420-1050 nm; "
                      "its response is cut there"]
    caplog.clear()
    with caplog.at_level(logging.INFO):  # half a 40 nm FWHM reaches 400 nm
        sensors.srf_from_sensor(sensors.sensor_bands("worldview2"), hsi, hsi_fwhm=40.0, source="wv2")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_srf_from_sensor_equals_srf_from_bands_gaussian():
    bands = sensors.sensor_bands("gf2_pms")
    srf, _ = sensors.srf_from_sensor(bands, AVIRIS_LIKE)
    np.testing.assert_array_equal(srf, dl.srf_from_bands(AVIRIS_LIKE, [b[1:] for b in bands], "gaussian"))


def test_check_band_count_suggests_msi_bands_select(tmp_path):
    sensors.check_band_count(4, 4, tmp_path / "msi.tif", "--msi_sensor gf2_pms")
    with raises_data_error(tmp_path / "msi.tif", r"the HR-MSI has 4 bands but --msi_sensor worldview2 gives 8; "
                                                 r"pick the 4 bands.*--msi_bands_select"):
        sensors.check_band_count(8, 4, tmp_path / "msi.tif", "--msi_sensor worldview2")


@pytest.mark.parametrize("text, expected", [
    ("450,520\n520,590\n630,690\n", [("band 1", 450, 520), ("band 2", 520, 590), ("band 3", 630, 690)]),
    ("name;low;high\nblue;450;520\ngreen;520;590\n", [("blue", 450, 520), ("green", 520, 590)]),
    ("# my sensor\nblue 450 520\nred edge 705 745\n".replace("red edge", "red_edge"),
     [("blue", 450, 520), ("red_edge", 705, 745)]),
    ("low\thigh\n450,5\t520\n", [("band 1", 450.5, 520)]),
])
def test_read_band_ranges(tmp_path, text, expected):
    path = tmp_path / "bands.csv"
    path.write_text(text)
    assert sensors.read_band_ranges(str(path)) == expected


def test_read_band_ranges_xlsx_with_header(tmp_path):
    path = tmp_path / "bands.xlsx"
    write_xlsx(path, [("band", "from (nm)", "to (nm)"), ("pan", 450, 900)])
    assert sensors.read_band_ranges(str(path)) == [("pan", 450.0, 900.0)]


@pytest.mark.parametrize("text, phrase", [
    ("0.45,0.52\n0.52,0.59\n", r"look like micrometres; give nanometres \(multiply by 1000\)"),
    ("520,450\n", r"band 'band 1' has low 520 >= high 450"),
    ("450,520,600\n", r"3 numeric column\(s\); a band table has two"),
    ("blue,450,520\n520,590\n", r"line 2 has 2 cells but line 1 has 3"),
    ("450,520\nabc,590\n", r"line 2, column 1 holds 'abc', which is not a number"),
])
def test_read_band_ranges_errors(tmp_path, text, phrase):
    path = tmp_path / "bands.csv"
    path.write_text(text)
    with raises_data_error(path, phrase):
        sensors.read_band_ranges(str(path))


# ----------------------------------------------------------------------------- resampling (problem 2)

def loop_trapezoid_srf(grid, response, centres, fwhm):
    """Independent reference: for each HSI band and MSI band, the trapezoid rule applied interval by
    interval to response(l) times the band's unit-area Gaussian; then the 1 % floor and normalisation."""
    out = np.zeros((len(centres), response.shape[1]))
    for c, (mu, f) in enumerate(zip(centres, fwhm)):
        sigma = f / 2.35482  # the project's FWHM / sigma ratio (config.FWHM_TO_SIGMA), 2 sqrt(2 ln 2) rounded
        g = np.exp(-0.5 * ((grid - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        for m in range(response.shape[1]):
            y = g * response[:, m]
            out[c, m] = sum((grid[i + 1] - grid[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(grid) - 1))
    return out


def floor_and_normalise(raw):
    out = raw.copy()
    for m in range(out.shape[1]):
        out[out[:, m] < 0.01 * out[:, m].max(), m] = 0
    return out / out.sum(axis=0)


@pytest.fixture
def fine():
    """A 1-nm sampled response of 3 bands from 420 to 900 nm, and 30 irregular HSI bands of varying FWHM."""
    grid = np.arange(420.0, 901.0, 1.0)
    response = fine_response(grid, [490, 560, 800], [60, 70, 100])
    centres = np.sort(np.random.default_rng(3).uniform(400, 950, 30))
    fwhm = np.linspace(9.0, 14.0, 30)
    return grid, response, centres, fwhm


def test_resample_with_fwhm_equals_loop_trapezoid_of_response_times_gaussian(fine):
    grid, response, centres, fwhm = fine
    raw = loop_trapezoid_srf(grid, response, centres, fwhm)
    got = sr.resample_srf(grid, response, centres, fwhm)
    np.testing.assert_allclose(got, floor_and_normalise(raw), rtol=1e-9, atol=1e-14)
    # the floor matters: the unfloored integrals have tails on many more bands
    assert np.count_nonzero(raw > 0) > np.count_nonzero(got > 0)
    assert_contiguous_columns(got)


def test_resample_without_fwhm_is_point_sampling_zero_outside_the_grid(fine):
    grid, response, centres, _ = fine
    raw = np.stack([np.interp(centres, grid, response[:, m], left=0.0, right=0.0)
                    for m in range(response.shape[1])], axis=1)
    got = sr.resample_srf(grid, response, centres)
    np.testing.assert_allclose(got, floor_and_normalise(raw), rtol=1e-12, atol=1e-15)
    assert np.all(got[(centres < 420) | (centres > 900)] == 0)


def test_resample_fwhm_tends_to_point_sampling_as_fwhm_shrinks(fine):
    grid, response, centres, _ = fine
    point = sr.resample_srf(grid, response, centres)
    gaps = [np.abs(sr.resample_srf(grid, response, centres, f) - point).max() for f in (16.0, 8.0, 4.0, 2.0)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3


def test_resample_scalar_fwhm_equals_per_band_fwhm(fine):
    grid, response, centres, _ = fine
    np.testing.assert_allclose(sr.resample_srf(grid, response, centres, 10.0),
                               sr.resample_srf(grid, response, centres, np.full(30, 10.0)), rtol=1e-14)


def test_resample_band_outside_the_hsi_is_named():
    grid = np.arange(400.0, 2401.0, 1.0)
    response = fine_response(grid, [560, 2200], [70, 180])
    with pytest.raises(DataError, match=r"toy.csv: no response at any HSI band for swir2 "
                                        r"\(responds from 1976 to 2400 nm\); the HSI covers 400-1000 nm"):
        sr.resample_srf(grid, response, np.linspace(400, 1000, 61), band_names=["green", "swir2"],
                        source="toy.csv")


# ----------------------------------------------------------------------------- problem 1: wavelength column

def test_wavelength_column_with_rows_equal_to_the_hsi_bands_is_not_an_msi_band(tmp_path, response40, caplog):
    path = tmp_path / "toy.csv"
    np.savetxt(path, np.column_stack([WL40, response40]), delimiter=",", fmt="%.8f")
    with caplog.at_level(logging.INFO):
        table = sr.load_srf(str(path))
        srf, names = sr.srf_for_hsi(table, 40)
    np.testing.assert_array_equal(table.wavelengths, WL40)
    assert srf.shape == (40, 4) and names is None
    np.testing.assert_allclose(srf, response40 / response40.sum(axis=0), atol=1e-9)
    text = caplog.text
    assert "column 1 increases strictly from 400 to 790 nm: read as the wavelength of each of the 40 rows" in text
    assert "40 rows, as many as the HSI bands: taken as the HSI bands" in text


def test_dataset_with_a_wavelength_column_srf_simulates_a_4_band_msi(tmp_path, rng, response40):
    def write(path):
        np.savetxt(path, np.column_stack([WL40, response40]), delimiter=",", fmt="%.8f")
    data = dl.Dataset(get_args(data_root(tmp_path, rng.random((10, 10, 40)), "toy.csv", write)))
    assert data.msi_channel == 4 and data.hsi_channel == 40
    np.testing.assert_allclose(data.sp_matrix, response40 / response40.sum(axis=0), atol=1e-9)


def test_wavelength_column_in_xls_with_header(tmp_path, response40):
    path = tmp_path / "toy.xls"
    write_xls(path, matrix_cells(np.column_stack([WL40, response40]), ["Wavelength", "blue", "green", "red", "nir"]))
    table = sr.load_srf(str(path))
    np.testing.assert_array_equal(table.wavelengths, WL40)
    assert table.band_names == ["blue", "green", "red", "nir"]
    np.testing.assert_allclose(table.response, response40)


def test_wavelength_column_in_micrometres_is_converted(tmp_path, response40):
    path = tmp_path / "toy.txt"
    np.savetxt(path, np.column_stack([WL40 / 1000, response40]), fmt="%.8f")
    table = sr.load_srf(str(path))
    np.testing.assert_allclose(table.wavelengths, WL40, rtol=1e-12)


def test_a_table_of_band_centres_is_refused(tmp_path):
    path = tmp_path / "toy.csv"
    np.savetxt(path, WL40[:, None], fmt="%.2f")
    with raises_data_error(path, r"one column, strictly increasing from 400 to 790 nm: it looks like band "
                                 r"centres \(wavelengths\), not a spectral response"):
        sr.load_srf(str(path))


def test_a_column_named_wavelength_must_be_increasing(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text("wavelength,blue\n500,0.1\n490,0.2\n")
    with raises_data_error(path, r"column 1 'wavelength' is named as wavelengths but its values"):
        sr.load_srf(str(path))


def test_table_on_its_own_grid_is_resampled_when_hsi_centres_are_known(tmp_path, caplog):
    grid = np.arange(420.0, 901.0, 1.0)
    response = fine_response(grid, [490, 560, 800], [60, 70, 100])
    path = tmp_path / "wv.csv"
    np.savetxt(path, np.column_stack([grid, response]), delimiter=";", fmt="%.6f",
               header="nm;b;g;nir", comments="")
    table = sr.load_srf(str(path))
    hsi = np.linspace(400, 1000, 61)
    with caplog.at_level(logging.INFO):
        srf, names = sr.srf_for_hsi(table, 61, hsi, 10.0)
    assert names == ["b", "g", "nir"]
    np.testing.assert_allclose(srf, sr.resample_srf(grid, np.round(response, 6), hsi, 10.0), rtol=1e-12)
    assert "integrated against each HSI band's Gaussian (FWHM given)" in caplog.text
    srf_point, _ = sr.srf_for_hsi(table, 61, hsi)
    np.testing.assert_allclose(srf_point, sr.resample_srf(grid, np.round(response, 6), hsi), rtol=1e-12)


def test_rows_equal_to_the_hsi_bands_but_other_wavelengths_are_resampled(tmp_path, caplog):
    hsi = np.linspace(400, 990, 60)
    response = fine_response(hsi + 3, [500, 700], [80, 120])  # the table is sampled 3 nm off
    table = sr.SRFTable(response, hsi + 3, None, "shifted.csv")
    with caplog.at_level(logging.INFO):
        srf, _ = sr.srf_for_hsi(table, 60, hsi)
    np.testing.assert_allclose(srf, sr.resample_srf(hsi + 3, response, hsi))
    assert "linearly interpolated at the HSI band centres" in caplog.text
    same, _ = sr.srf_for_hsi(sr.SRFTable(response, hsi + 0.2, None, "same.csv"), 60, hsi)
    np.testing.assert_allclose(same, response / response.sum(axis=0))


def test_own_grid_without_hsi_centres_asks_for_hsi_wavelengths(tmp_path):
    grid = np.arange(400.0, 1001.0, 1.0)
    table = sr.SRFTable(fine_response(grid, [500], [80]), grid, None, "wv2_1nm.csv")
    with raises_data_error("wv2_1nm.csv", r"the SRF is sampled on 601 wavelengths from 400 to 1000 nm but the HSI "
                                          r"band centres are unknown: pass --hsi_wavelengths FILE"):
        sr.srf_for_hsi(table, 40)


def test_resampled_band_partly_outside_the_hsi_gets_a_warning(caplog):
    grid = np.arange(400.0, 1101.0, 1.0)
    table = sr.SRFTable(fine_response(grid, [560, 960], [70, 100]), grid, ["green", "nir2"], "t.csv")
    with caplog.at_level(logging.INFO):
        sr.srf_for_hsi(table, 50, np.linspace(450, 940, 50))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "of nir2's response lies outside the HSI range 450-940 nm" in warned[0]


# ----------------------------------------------------------------------------- problem 3: .mat with vectors

def test_mat_with_table_and_wavelength_vector(tmp_path, response40, caplog):
    path = tmp_path / "srf.mat"
    scipy.io.savemat(path, {"R": response40, "wavelength": WL40[None, :]})
    with caplog.at_level(logging.INFO):
        table = sr.load_srf(str(path))
    assert table.key == "R"
    np.testing.assert_array_equal(table.response, response40)
    np.testing.assert_array_equal(table.wavelengths, WL40)
    assert "vector 'wavelength' (400 to 790 nm) read as the wavelength of each row of 'R'" in caplog.text
    srf, _ = sr.srf_for_hsi(table, 40)
    np.testing.assert_allclose(srf, response40 / response40.sum(axis=0))


def test_mat_v73_with_table_and_column_vector(tmp_path, response40):
    path = tmp_path / "srf.mat"
    write_v73(path, {"SRF": response40, "wl": WL40[:, None]})
    table = sr.load_srf(str(path))
    np.testing.assert_array_equal(table.response, response40)
    np.testing.assert_array_equal(table.wavelengths, WL40)


def test_mat_picks_the_table_with_the_cube_band_count(tmp_path, response40, rng):
    path = tmp_path / "srf.mat"
    scipy.io.savemat(path, {"R": response40, "other": rng.random((10, 10)), "wl": WL40})
    with raises_data_error(path, r"several 2-D tables \(R \(40, 4\), other \(10, 10\)\), cannot tell which is the "
                                 r"SRF; pass --srf_key NAME"):
        sr.load_srf(str(path))
    np.testing.assert_array_equal(sr.load_srf(str(path), hsi_channels=40).response, response40)
    np.testing.assert_array_equal(sr.load_srf(str(path), key="R").response, response40)
    message = ""
    try:
        sr.load_srf(str(path))
    except DataError as exc:
        message = str(exc)
    assert "REF" not in message  # the old advice did not work for SRFs


def test_mat_key_missing_lists_the_variables(tmp_path, response40):
    path = tmp_path / "srf.mat"
    scipy.io.savemat(path, {"R": response40})
    with raises_data_error(path, r"no numeric variable 'S' \(--srf_key\); the numeric variables are: R \(40, 4\)"):
        sr.load_srf(str(path), key="S")


def test_mat_with_only_vectors_has_no_table(tmp_path):
    path = tmp_path / "srf.mat"
    scipy.io.savemat(path, {"wl": WL40, "fwhm": np.full(40, 10.0)})
    with raises_data_error(path, r"no 2-D table .* among the numeric variables: wl \(1, 40\), fwhm \(1, 40\)"):
        sr.load_srf(str(path))


def test_dataset_reads_a_mat_srf_with_a_wavelength_vector(tmp_path, rng, response40):
    def write(path):
        scipy.io.savemat(path, {"R": response40, "wavelength": WL40[None, :]})
    data = dl.Dataset(get_args(data_root(tmp_path, rng.random((10, 10, 40)), "toy.mat", write)))
    assert data.msi_channel == 4
    np.testing.assert_allclose(data.sp_matrix, response40 / response40.sum(axis=0))


# ----------------------------------------------------------------------------- problem 4: empty cells in Excel

def test_xls_empty_cells_are_zero(tmp_path, response40):
    path = tmp_path / "toy.xls"
    cells = matrix_cells(response40, blank_zeros=True)
    cells[(39, 0)] = None  # a BLANK record (formatted empty cell)
    cells[(20, 0)] = ""  # an empty text cell: what made float('') fail
    write_xls(path, cells)
    np.testing.assert_array_equal(sr.load_srf(str(path)).response, response40)


def test_xls_text_cell_is_named_as_excel_shows_it(tmp_path, response40):
    path = tmp_path / "toy.xls"
    cells = matrix_cells(response40, ["coastal", "blue", "green", "red"])
    cells[(6, 2)] = "n/a"
    write_xls(path, cells, sheet="spec")
    with raises_data_error(path, r"sheet 'spec', cell C7 holds 'n/a', which is not a number; .*an empty cell "
                                 r"counts as 0"):
        sr.load_srf(str(path))


def test_xlsx_empty_cells_header_and_named_error_cell(tmp_path, response40):
    path = tmp_path / "toy.xlsx"
    rows = [["coastal", "blue", "green", "red"]] + [[v if v else None for v in row] for row in response40]
    write_xlsx(path, rows)
    table = sr.load_srf(str(path))
    np.testing.assert_allclose(table.response, response40, rtol=1e-15)  # openpyxl writes 17 digits
    assert table.band_names == ["coastal", "blue", "green", "red"]
    rows[12][3] = "oops"
    write_xlsx(path, rows, sheet="SRF")
    with raises_data_error(path, r"sheet 'SRF', cell D13 holds 'oops'"):
        sr.load_srf(str(path))


def test_excel_cell_names():
    assert [tables.excel_cell(0, 0), tables.excel_cell(6, 2), tables.excel_cell(0, 25), tables.excel_cell(9, 26),
            tables.excel_cell(0, 701), tables.excel_cell(0, 702)] == ["A1", "C7", "Z1", "AA10", "ZZ1", "AAA1"]


def test_shipped_houston18_xls_reads_as_before():
    table = sr.load_srf(str(ROOT / "data" / "spectral_response" / "houston18.xls"))
    assert table.response.shape == (46, 8) and table.wavelengths is None and table.band_names is None


def test_a_text_file_named_xls_is_a_data_error(tmp_path):
    path = tmp_path / "toy.xls"
    path.write_text("0.1,0.2\n")
    with raises_data_error(path, r"could not read it as an Excel \.xls workbook"):
        sr.load_srf(str(path))


# ----------------------------------------------------------------------------- problem 5: headers, separators, .xlsx

@pytest.mark.parametrize("sep", [";", "\t", ",", " "])
def test_header_row_of_band_names_with_any_separator(tmp_path, response40, sep):
    path = tmp_path / "toy.csv"
    lines = [sep.join(["coastal", "blue", "green", "red"])] + [sep.join(f"{v:.8f}" for v in row) for row in response40]
    path.write_text("\n".join(lines) + "\n")
    table = sr.load_srf(str(path))
    assert table.band_names == ["coastal", "blue", "green", "red"]
    np.testing.assert_allclose(table.response, response40, atol=1e-8)
    srf, names = sr.srf_for_hsi(table, 40)
    assert names == ["coastal", "blue", "green", "red"]


def test_semicolons_with_decimal_commas_and_empty_fields(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text("blue;red\n0,5;\n0,25;0,75\n;1\n")
    np.testing.assert_array_equal(sr.load_srf(str(path)).response, [[0.5, 0], [0.25, 0.75], [0, 1]])


def test_csv_with_a_separator_ending_every_line_and_a_bom(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_bytes("\ufeffa,b,\n1,2,\n3,4,\n".encode("utf-8"))
    table = sr.load_srf(str(path))
    assert table.band_names == ["a", "b"]
    np.testing.assert_array_equal(table.response, [[1, 2], [3, 4]])


def test_ragged_text_rows_are_named(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text("# comment\n0.1,0.2\n0.3\n")
    with raises_data_error(path, r"line 3 has 1 cells but line 2 has 2"):
        sr.load_srf(str(path))


def test_xlsx_next_to_the_data_is_found(tmp_path, response40):
    write_xlsx(tmp_path / "houston.xlsx", response40.tolist())
    assert sr.find_srf_file(str(tmp_path), "houston") == str(tmp_path / "houston.xlsx")
    assert dl.find_srf_file is sr.find_srf_file


def test_openpyxl_is_a_requirement():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert any(re.fullmatch(r"openpyxl\s*(>=.*)?", line.strip()) for line in lines)


def test_default_data_srf_is_unchanged():
    path = Path(SYNTHETIC_SRF)
    table = sr.load_srf(str(path))
    assert table.wavelengths is None and table.band_names is None
    srf, _ = sr.srf_for_hsi(table, 68)
    raw = np.loadtxt(path, delimiter=",")
    np.testing.assert_array_equal(srf, raw / raw.sum(axis=0, keepdims=True))


# ----------------------------------------------------------------------------- problem 6: channels-first cubes

def test_validate_srf_says_the_cube_looks_channels_first(rng):
    srf = banded_response(30, ((0, 14), (15, 29)), rng)
    with raises_data_error("toy.csv", r"the SRF has 30 rows but the HSI cube has 36 bands; .*the cube scene\.h5 "
                                      r"was read as 30 x 52 x 36 \(H x W x C\), and its first axis has 30 entries.*"
                                      r"looks channels-first.*np\.moveaxis\(cube, 0, -1\)"):
        dl.validate_srf(srf, 36, "toy.csv", cube_path="scene.h5", cube_shape=(30, 52, 36))


def test_validate_srf_second_axis_and_no_hint_when_no_axis_matches(rng):
    srf = banded_response(30, ((0, 14), (15, 29)), rng)
    with pytest.raises(DataError, match=r"second axis has 30 entries"):
        dl.validate_srf(srf, 36, "toy.csv", cube_path="c.npy", cube_shape=(52, 30, 36))
    with pytest.raises(DataError) as exc:
        dl.validate_srf(srf, 36, "toy.csv", cube_path="c.npy", cube_shape=(52, 40, 36))
    assert "channels-first" not in str(exc.value)


def test_dataset_with_an_h5py_written_channels_first_cube(tmp_path, rng):
    cube = rng.random((30, 12, 14))  # bands first, as h5py wrote it: read in stored order
    srf = banded_response(30, ((0, 14), (15, 29)), rng)
    (tmp_path / "data" / "toy").mkdir(parents=True)
    with h5py.File(tmp_path / "data" / "toy" / "scene.mat", "w") as f:
        f.create_dataset("REF", data=cube)
    (tmp_path / "srf").mkdir()
    np.savetxt(tmp_path / "srf" / "toy.csv", srf, delimiter=",")
    argv = ["--default_datapath", str(tmp_path / "data"), "--sp_root_path", str(tmp_path / "srf"),
            "--data_name", "toy", "--device", "cpu"]
    with raises_data_error(tmp_path / "srf" / "toy.csv", f"{re.escape(str(tmp_path / 'data' / 'toy' / 'scene.mat'))} "
                                                         r"was read as 30 x 12 x 14.*looks channels-first"):
        dl.Dataset(get_args(argv))


def test_validate_srf_accepts_a_table_whose_rows_are_the_hsi_bands(response40):
    table = sr.SRFTable(response40, None, None, "t.csv")
    np.testing.assert_allclose(dl.validate_srf(table, 40, "t.csv"), response40 / response40.sum(axis=0))


def test_quoted_header_names_may_hold_the_separator(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text('"nm","red, wide","nir"\n600,1,0\n700,0.5,0.5\n800,0,1\n')
    table = sr.load_srf(str(path))
    assert table.band_names == ["red, wide", "nir"]
    np.testing.assert_array_equal(table.wavelengths, [600, 700, 800])


def test_blank_top_left_cell_above_a_wavelength_column(tmp_path, response40):
    path = tmp_path / "toy.xlsx"
    write_xlsx(path, [[None, "b1", "b2", "b3", "b4"]] + np.column_stack([WL40, response40]).tolist())
    table = sr.load_srf(str(path))
    assert table.band_names == ["b1", "b2", "b3", "b4"]
    np.testing.assert_array_equal(table.wavelengths, WL40)
