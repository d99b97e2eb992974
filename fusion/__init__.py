"""One fusion run's data and diagnostics, whatever the method: the image pair as the training sees it
(``fusion.pair``: ``Pair``, ``hwc``, the masked losses, the reduced-resolution pair), the batches of
aligned patches a whole scene trains on (``fusion.patches``), what is watched while it trains
(``fusion.monitor``: ``Monitor``), the tiled forward of a network over a whole scene (``fusion.tiling``),
and the fused image's scores and output files, whole or tile by tile (``fusion.results``). The methods
that train on a pair are in ``methods``.

Importing the package does no work; import the submodule you need (e.g. ``from fusion.pair import Pair``).
"""
