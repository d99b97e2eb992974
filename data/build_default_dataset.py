"""Rebuild the embedded default data set from the full AVIRIS Indian Pines cube.

    python data/build_default_dataset.py PATH/TO/indian_pines_224.mat

Keeps the first 68 channels (400-1040 nm, the range a WorldView-2-like sensor covers) as
data/indian_pines/indian_pines_vnir.mat (key REF, float32, compressed) and writes the matching
WorldView-2-like 8-band SRF, built with data_loader.srf_from_bands, to
data/spectral_response/indian_pines.csv.
"""
import os
import sys

import numpy as np
import scipy.io

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data_loader import load_cube, srf_from_bands  # noqa: E402
from imagery.sensors import band_ranges  # noqa: E402

VNIR_CHANNELS = 68
# AVIRIS band centres for this scene: evenly spaced over 400-2500 nm, 224 channels.
AVIRIS_WAVELENGTHS = np.linspace(400.0, 2500.0, 224)
WORLDVIEW2_NAMES = ("coastal", "blue", "green", "yellow", "red", "red_edge", "nir1", "nir2")


def main(source):
    here = os.path.dirname(os.path.abspath(__file__))
    cube = load_cube(source, key="Ori_H")[:, :, :VNIR_CHANNELS].astype(np.float32)
    scipy.io.savemat(os.path.join(here, "indian_pines", "indian_pines_vnir.mat"), {"REF": cube},
                     do_compression=True)
    srf = srf_from_bands(AVIRIS_WAVELENGTHS[:VNIR_CHANNELS], band_ranges("worldview2"), shape="gaussian")
    header = ("WorldView-2-like SRF for the Indian Pines VNIR cube: rows = 68 AVIRIS bands (400-1040 nm), "
              "columns = " + ", ".join(WORLDVIEW2_NAMES) + ".\nGaussian responses, FWHM = band width, "
              "built by data/build_default_dataset.py with data_loader.srf_from_bands.")
    np.savetxt(os.path.join(here, "spectral_response", "indian_pines.csv"), srf, delimiter=",",
               fmt="%.8f", header=header)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
