"""Imagery: reading and writing image files (MATLAB, NumPy, ENVI, GeoTIFF), spectral responses and
sensor band tables, the radiometric scaling rule and no-data masks, pair geometry, and quick-look figures.

Importing the package does no work; import the submodule you need (e.g. ``from imagery import readers``).
"""
