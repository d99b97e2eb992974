"""Reproducing the papers' tables and figures from this project's runs.

Modules:
    tables          ``python -m reproduce.tables``: UDALN's Table I (ablation of its training stages) and
                    Tables II-III (every method at scale factors 5 and 8), run as a resumable sweep of
                    cells (locally or on SLURM through submitit), written as Markdown, CSV, LaTeX and JSON
    cells           one cell of the tables: a deep run (train_all_special.py) or a classical baseline on the
                    Wald pair saved once per scale; the skip-complete / resume logic of a sweep
    figures         the papers' Fig. 3 for a table of runs, and a run's figures redrawn from its folder
    options_reference  docs/options.md, generated from the command line's parser
    classification  the UDS2C2 paper's real-data protocol: classification of fused images
"""
