"""EnMAP Level-2A: the metadata read beside the spectral image, which the GeoTIFF itself does not carry.

EnMAP Level-2A (DLR, "EnMAP Level 2A Product Specification", EN-PCV-ICD-2009-2; "EnMAP HSI Level 1 and 2
product metadata"): the spectral image ``...-SPECTRAL_IMAGE.TIF`` (224 bands, int16) comes with
``...-METADATA.XML`` beside it, whose ``specific/bandCharacterisation/bandID[@number]`` elements give each
band's centre (``wavelengthCenterOfBand``, nm), width (``FWHMOfBand``, nm) and the linear scaling of its
stored values (``GainOfBand``, ``OffsetOfBand``: physical value = stored x gain + offset, reflectance for
L2A), and whose ``vnirProductQuality/expectedChannelsList`` and ``swirProductQuality/expectedChannelsList``
list the channels delivered with data: the others (the bad bands, 6 in the example scene) are filled with
the no-data value.
"""
import glob
import os
import xml.etree.ElementTree as ET

import numpy as np

from imagery.errors import DataError

ENMAP_IMAGE_SUFFIX = "-SPECTRAL_IMAGE"
ENMAP_METADATA_SUFFIX = "-METADATA.XML"


def enmap_metadata_for(image_path):
    """The METADATA.XML beside an EnMAP spectral image ``image_path`` (``<id>-SPECTRAL_IMAGE.TIF``), or None
    when the file is not named as an EnMAP product's or has no metadata beside it."""
    stem, _ = os.path.splitext(image_path)
    if not stem.upper().endswith(ENMAP_IMAGE_SUFFIX):
        return None
    base = stem[:-len(ENMAP_IMAGE_SUFFIX)]
    matches = [p for p in glob.glob(glob.escape(base) + "-*") if p.upper() == (base + ENMAP_METADATA_SUFFIX).upper()]
    return matches[0] if matches else None


def read_enmap_metadata(path, bands):
    """The band information of the EnMAP METADATA.XML ``path`` for an image of ``bands`` bands: a dict with
    ``wavelengths`` and ``fwhm`` (nm), ``gains`` and ``offsets`` (C float64 each, in band order) and
    ``bad_bands`` (C bool: not in the expected channel lists). Raises DataError naming the file when it
    cannot be parsed or describes another number of bands."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"{path}: the EnMAP metadata cannot be read ({exc})") from None
    entries = root.findall("specific/bandCharacterisation/bandID")
    try:
        numbered = sorted((int(e.attrib["number"]), [float(e.findtext(tag)) for tag in
                           ("wavelengthCenterOfBand", "FWHMOfBand", "GainOfBand", "OffsetOfBand")])
                          for e in entries)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: a bandCharacterisation/bandID element lacks its number, centre, FWHM, gain or "
                        "offset; the file is not an EnMAP metadata file of the documented layout") from None
    if len(numbered) != bands or [n for n, _ in numbered] != list(range(1, bands + 1)):
        raise DataError(f"{path}: describes {len(numbered)} bands, the spectral image beside it has {bands}; give "
                        "the metadata of the same product")
    values = np.array([v for _, v in numbered], dtype=np.float64)
    expected = set()
    lists = [root.find(f".//{part}ProductQuality/expectedChannelsList") for part in ("vnir", "swir")]
    for node in lists:
        if node is not None and node.text:
            expected.update(int(item) for item in node.text.replace(";", ",").split(",") if item.strip())
    bad = np.array([b not in expected for b in range(1, bands + 1)]) if expected else np.zeros(bands, bool)
    return {"wavelengths": values[:, 0], "fwhm": values[:, 1], "gains": values[:, 2], "offsets": values[:, 3],
            "bad_bands": bad}


def apply_enmap_metadata(image, metadata_path):
    """``image`` (imagery.readers.Image of an EnMAP spectral image, float data) with the product's band
    centres and widths, its values scaled to physical units (stored x gain + offset, band by band; no-data
    values become NaN first) and its bad bands set to NaN, so that they are dropped as bands without data.
    Changes ``image`` in place and returns the list of bad bands (1-based)."""
    meta = read_enmap_metadata(metadata_path, image.data.shape[2])
    data = image.data
    if image.nodata is not None:
        data[data == image.nodata] = np.nan
    data *= meta["gains"].astype(data.dtype)
    data += meta["offsets"].astype(data.dtype)
    data[:, :, meta["bad_bands"]] = np.nan
    image.wavelengths, image.fwhm = meta["wavelengths"], meta["fwhm"]
    return [int(b) + 1 for b in np.flatnonzero(meta["bad_bands"])]
