"""One fusion run's data and diagnostics, whatever the method: the image pair as the training sees it
(``fusion.pair``: ``Pair``, ``hwc``, the masked losses, the reduced-resolution pair), what is watched
while it trains (``fusion.monitor``: ``Monitor``), and the fused image's quality without a reference and
its georeferenced output (``fusion.results``). The methods that train on a pair are in ``methods``.

Importing the package does no work; import the submodule you need (e.g. ``from fusion.pair import Pair``).
"""
