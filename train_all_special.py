"""Unsupervised blind hyperspectral-multispectral fusion (UDALN, Li et al., IEEE GRSL 2022, and its
successors PFS2C2 and UDS2C2): the command line. One run goes from the input pair to the run folder
(``fusion.run.fuse``, Algorithm 1 at a glance); each method's networks and stages are in ``methods``.

    python train_all_special.py [options]      (python train_all_special.py -h lists them)
"""
import logging
import sys

from config import get_args
from data_loader import DataError
from func import RESUMABLE_OPTIONS, Interrupted, TrainingDiverged, resume_overrides
from fusion.memory import OutOfMemory
from fusion.run import fuse

log = logging.getLogger(__name__)


def main(argv=None):
    """The command line: fuse as ``argv`` says; returns the exit code (0 done, 1 a data, divergence or
    memory error, 130/143 interrupted by SIGINT/SIGTERM)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = get_args(argv)
    try:
        fuse(args, resume_overrides(argv) if args.resume else RESUMABLE_OPTIONS)
    except (DataError, TrainingDiverged, OutOfMemory) as exc:
        log.error("error: %s", exc)
        return 1
    except Interrupted as exc:
        log.error("%s: %s", exc, exc.how_to_resume())
        return exc.exit_code
    except KeyboardInterrupt:  # before training began: nothing to save
        log.error("interrupted before training began")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
