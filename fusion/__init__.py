"""One fusion run, whatever the method: the run itself from the pair to the run folder (``fusion.run``:
``fuse``, Algorithm 1 at a glance) and its Python API on arrays (``fusion.api``: ``fuse_arrays``); the
image pair as the training sees it (``fusion.pair``: ``Pair``, ``hwc``, the masked losses, the
reduced-resolution pair), the batches of aligned patches a whole scene trains on (``fusion.patches``),
what is watched while it trains (``fusion.monitor``: ``Monitor``), the tiled forward of a network over a
whole scene (``fusion.tiling``), the fused image's scores and output files, whole or tile by tile
(``fusion.results``), the run's figures (``fusion.figures``), its folder and name (``fusion.run_folder``)
and its memory (``fusion.memory``). The methods that train on a pair are in ``methods``; the training
mechanics (schedule, stage loop, checkpoints) in ``func``.

Importing the package does no work; import the submodule you need (e.g. ``from fusion.pair import Pair``).
"""
