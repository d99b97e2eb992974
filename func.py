"""Training mechanics shared by every method: seeding, the learning-rate schedule, the stage loop, and
what keeps a run alive: the training session (checkpoints, resuming, SIGINT/SIGTERM, the reports of a
run that stops). The run folder is ``fusion.run_folder``'s, the memory estimates ``fusion.memory``'s."""
import argparse
import contextlib
import copy
import logging
import math
import os
import random
import signal
import threading
import time

import numpy as np
import torch
from tqdm import tqdm

from config import build_parser
from data_loader import DataError
from fusion.memory import OutOfMemory, is_out_of_memory, out_of_memory_message
from fusion.run_folder import CHECKPOINT_NAME
from imagery.writers import atomic_write

log = logging.getLogger(__name__)

LOSS_CHECK_EVERY = 100  # epochs between loss read-outs (progress bar, NaN/Inf check)
LOG_EVERY_SECONDS = 60  # between progress log lines when stderr is not a terminal (no progress bar)

CHECKPOINT_FORMAT = 1
# What a resumed run may take anew; every other option comes from the checkpoint, so that resuming
# cannot change the result.
RESUMABLE_OPTIONS = ("threads", "device", "checkpoint_every")
_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as a shell reports them


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf."""


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM stopped the training. A BaseException, like KeyboardInterrupt, so that
    no ``except Exception`` on the way swallows it.

    ``where``: e.g. "at stage 2, epoch 150"; ``checkpoint``: (stage, epoch) the run's training_state.pt
    continues from (stage None: after the last stage), or None when there is none; ``exit_code``: 130
    for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, signum, where, folder, checkpoint):
        self.signum, self.folder, self.checkpoint = signum, folder, checkpoint
        self.exit_code = _EXIT_CODES.get(signum, 128 + int(signum))
        super().__init__(f"interrupted {where} ({signal.Signals(signum).name})")

    def how_to_resume(self):
        """One sentence: how to continue the run, or that it must start again."""
        if self.checkpoint is None:
            return "no checkpoint was saved yet: start the run again"
        stage, epoch = self.checkpoint
        at = "to write the results" if stage is None else f"from stage {stage}, epoch {epoch}"
        return f"resume {at} with: python train_all_special.py --resume {self.folder}"


def set_seed(seed):
    """Seed every generator the training touches (the original seeds torch, numpy and random with 2)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


# ----------------------------------------------------------------------------- schedule

def stage_lr(epoch, lr, epochs, decay_begin, authors_script=False):
    """Learning rate used in ``epoch`` (1-based): constant, then linear decay reaching 0 after the last epoch.

    The original subtracts lr / (epochs - decay_begin + 1) after every epoch >= decay_begin, so epoch e
    runs at lr * (1 - max(0, e - decay_begin) / (epochs - decay_begin + 1)).
    ``authors_script`` reproduces the PFS2C2 authors' script (--pfs_lr_reset): it sets the rate only after
    an epoch >= decay_begin, each time to lr - lr / (epochs - decay_begin + 1) (the decay never
    accumulates), and leaves the epochs up to decay_begin at whatever rate the optimiser has (the one it
    was created with, or the last of an earlier stage): None for those epochs.
    """
    steps = max(0, epoch - decay_begin)
    if steps == 0:  # also covers decay_begin past the last epoch: a constant rate
        return None if authors_script else lr
    if authors_script:
        steps = 1
    return lr * (1.0 - steps / (epochs - decay_begin + 1))


# --schedule auto (docs/performance.md, "Time to quality"): the criterion is the stage's own loss, averaged
# over PLATEAU_WINDOW epochs and judged after the stage's first PLATEAU_WARMUP windows; a plateau is
# PLATEAU_PATIENCE such means without a relative improvement of PLATEAU_TOLERANCE; each plateau makes the
# paper's rate PLATEAU_FACTOR times smaller, and the plateau at the PLATEAU_RATES-th rate, or at a lowered
# rate that found no better state, ends the stage. The warm-up: UDALN's stage-3 loss rises for about 1,000
# epochs before it falls (Houston 2018), and its first window, mostly the state the stage began from, would
# otherwise stay the best (docs/performance.md).
PLATEAU_WINDOW = LOSS_CHECK_EVERY
PLATEAU_PATIENCE = 10
PLATEAU_WARMUP = PLATEAU_PATIENCE
PLATEAU_TOLERANCE = 1e-3
PLATEAU_FACTOR = 0.1
PLATEAU_RATES = 3


class PlateauSchedule:
    """--schedule auto: the paper's schedule of one stage (``stage_lr`` of ``lr``, ``epochs``,
    ``decay_begin``) cut short where the stage's loss stops falling: each plateau lowers the rate, the
    plateau at the lowest rate ends the stage, and the state kept is the best one by that loss. The stage
    never runs longer than the paper's, and where no plateau comes first it is the paper's.

    The criterion is no-reference: the mean of the stage's loss over each PLATEAU_WINDOW epochs (the loss
    each epoch's step was taken on), after the stage's first PLATEAU_WARMUP windows. A mean below the best so
    far makes the networks' and optimisers' state
    after that window the best (``snapshot()``); a mean that is not PLATEAU_TOLERANCE (relatively) below
    the best of the current rate counts towards a plateau. After PLATEAU_PATIENCE such means, the best state
    is restored and the rate multiplied by PLATEAU_FACTOR: a lowered rate counts only the means that improve
    on the best state. The plateau at the PLATEAU_RATES-th rate ends the stage, as does the plateau of a
    lowered rate that found no better state (a lower one would not either), and the stage's last epoch.
    At the end the best state is restored (``restore(state)``). ``state_dict``/``load_state_dict`` carry
    it across a checkpoint, so a resumed stage takes the same decisions as an uninterrupted one.
    """

    def __init__(self, snapshot, restore):
        self.snapshot, self.restore = snapshot, restore
        self.level = 0                 # rates lowered so far
        self.rate_epochs = [0]         # the epoch after which each rate began
        self.best, self.best_epoch, self.best_state = math.inf, 0, None
        self.rate_best, self.stale = math.inf, 0   # the best mean at this rate, means since it improved
        self.window, self.window_epochs = 0.0, 0   # the running sum (a tensor: no device sync each epoch)
        self.windows = 0                           # the windows complete
        self.stopped = False

    def factor(self):
        """What the paper's rate is multiplied by: PLATEAU_FACTOR for each plateau so far."""
        return PLATEAU_FACTOR ** self.level

    def add(self, loss):
        """Add the loss of this epoch's step (a 0-d tensor, not read here) to the window."""
        self.window = self.window + loss.detach()
        self.window_epochs += 1

    def end_epoch(self, epoch):
        """The optimisers have stepped for ``epoch``; at a window's end, judge it (and on a plateau that
        lowers the rate, restore the best state). Returns True when a plateau ends the stage."""
        if self.window_epochs < PLATEAU_WINDOW:
            return False
        mean = float(self.window) / self.window_epochs
        self.window, self.window_epochs = 0.0, 0
        self.windows += 1
        if self.windows <= PLATEAU_WARMUP:
            return False
        if mean < self.best:
            self.best, self.best_epoch, self.best_state = mean, epoch, self.snapshot()
        if mean < self.rate_best * (1.0 - PLATEAU_TOLERANCE):
            self.rate_best, self.stale = mean, 0
            return False
        self.stale += 1
        if self.stale < PLATEAU_PATIENCE:
            return False
        gained_nothing = self.level > 0 and self.best_epoch <= self.rate_epochs[-1]
        if self.level + 1 == PLATEAU_RATES or gained_nothing:
            self.stopped = True
            return True
        self.level += 1
        self.rate_epochs.append(epoch)
        self.keep_best()  # the lower rate starts from the best state and must improve on it
        self.rate_best, self.stale = self.best, 0
        return False

    def keep_best(self):
        """Restore the best state; nothing when no window was complete."""
        if self.best_state is not None:
            self.restore(self.best_state)

    def summary(self, epoch):
        """What metrics.json keeps of the stage's schedule: the epochs run (``epoch``), the one whose state
        was kept, the mean loss there, and the epochs after which each rate began."""
        began = [e for e in self.rate_epochs if e < epoch] or [0]  # not a rate lowered after the last epoch
        return {"rule": "auto", "epochs_run": int(epoch), "best_epoch": int(self.best_epoch),
                "best_mean_loss": None if self.best_state is None else self.best,
                "rate_factors": [PLATEAU_FACTOR ** k for k in range(len(began))],
                "rate_lowered_after": began[1:], "stopped_on_plateau": self.stopped}

    def state_dict(self):
        return {"level": self.level, "rate_epochs": list(self.rate_epochs), "best": self.best,
                "best_epoch": self.best_epoch, "best_state": self.best_state, "rate_best": self.rate_best,
                "stale": self.stale, "window": self.window, "window_epochs": self.window_epochs,
                "windows": self.windows, "stopped": self.stopped}

    def load_state_dict(self, state):
        for name, value in state.items():
            setattr(self, name, value)


def current_rate(optimizers, scheduled):
    """The rate to report for an epoch: the scheduled one, or (None: the optimisers keep theirs) the first
    optimiser's."""
    return optimizers[0].param_groups[0]["lr"] if scheduled is None else scheduled


def train_stage(title, optimizers, loss_fn, lr, epochs, decay_begin, evaluate=None, eval_every=1000,
                authors_script=False, start_epoch=0, progress=None, plateau=None):
    """Minimise ``loss_fn()`` for epochs ``start_epoch + 1`` .. ``epochs`` with ``optimizers`` on the
    stage's schedule (``start_epoch`` > 0 continues a resumed stage): the paper's (``stage_lr``), times
    ``plateau``'s factor with a PlateauSchedule (--schedule auto), which may end the stage early and restores
    its best state before the last evaluation.

    ``evaluate(epoch, lr, last)`` is called every ``eval_every`` epochs and after the last one.
    ``progress`` (a TrainingSession) is told when the optimisers step (``enter_step``), when an
    epoch's steps are complete (``leave_step(epoch)``, where it may save a checkpoint or stop), and,
    when it has a ``record_loss`` method, of each loss read (``record_loss(epoch, loss)``: every
    LOSS_CHECK_EVERY epochs and the last one, the loss before that epoch's step), which is the loss
    history of metrics.json.
    Without a terminal on stderr there is no progress bar; a log line (stage, epoch, loss, lr,
    epochs per second) is written every LOG_EVERY_SECONDS instead. Raises TrainingDiverged if the loss
    becomes NaN or Inf. Returns the last loss read (NaN when no epoch ran).
    """
    bar = tqdm(range(start_epoch + 1, epochs + 1), desc=title, unit="ep", dynamic_ncols=True,
               mininterval=1.0, disable=None, initial=start_epoch, total=epochs)
    log_lines = bar.disable  # tqdm's disable=None: off when stderr is not a terminal
    logged_at, logged_epoch = time.monotonic(), start_epoch
    value = float("nan")
    record_loss = getattr(progress, "record_loss", None)

    def rate(epoch):
        scheduled = stage_lr(epoch, lr, epochs, decay_begin, authors_script)
        return scheduled * plateau.factor() if plateau is not None and scheduled is not None else scheduled

    if start_epoch >= epochs or (plateau is not None and plateau.stopped):  # resumed after the last step
        bar.close()
        if plateau is not None:
            plateau.keep_best()
        if evaluate is not None:
            evaluate(start_epoch, current_rate(optimizers, rate(start_epoch)), True)
        return value
    for epoch in bar:
        current_lr = rate(epoch)
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                if current_lr is not None:
                    group["lr"] = current_lr
            optimizer.zero_grad(set_to_none=True)
        current_lr = current_rate(optimizers, current_lr)
        loss = loss_fn()
        loss.backward()
        if plateau is not None:
            plateau.add(loss)
        last = epoch == epochs
        # Read before leave_step, which may save a checkpoint: the history it saves then ends at this epoch.
        if epoch % LOSS_CHECK_EVERY == 0 or last:
            value = loss.item()
            if not math.isfinite(value):
                bar.close()
                raise TrainingDiverged(f"{title}: the loss became {value} at epoch {epoch} (lr {current_lr:g}); "
                                       "try a smaller learning rate or check the input data")
            bar.set_postfix(loss=f"{value:.3e}", lr=f"{current_lr:.2e}", refresh=False)
            if record_loss is not None:
                record_loss(epoch, value)
        if progress is not None:
            progress.enter_step()
        for optimizer in optimizers:
            optimizer.step()
        if plateau is not None and plateau.end_epoch(epoch):
            last = True
        if progress is not None:
            progress.leave_step(epoch)
        if log_lines:
            now = time.monotonic()
            if now - logged_at >= LOG_EVERY_SECONDS:
                log.info("%s: epoch %d/%d, loss %.3e, lr %.2e, %.1f epochs/s", title, epoch, epochs, loss.item(),
                         current_lr, (epoch - logged_epoch) / max(now - logged_at, 1e-9))
                logged_at, logged_epoch = now, epoch
        if last and plateau is not None:
            plateau.keep_best()
        if evaluate is not None and (epoch % eval_every == 0 or last):
            evaluate(epoch, current_lr, last)
        if last:
            break
    bar.close()
    return value


def _plain(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists, so that a checkpoint
    loads with ``torch.load(weights_only=True)``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


# ----------------------------------------------------------------------------- checkpoint and resume

def _module_states(modules):
    """CPU copies of every module's state_dict: {name: {key: tensor}}."""
    return {name: {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
            for name, module in modules.items()}


def _load_module_states(modules, states):
    for name, module in modules.items():
        module.load_state_dict(states[name])


def _rng_states(cuda):
    keys = np.random.get_state()
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if cuda else None,
            "numpy": [keys[0], keys[1].tolist(), *keys[2:]], "python": random.getstate()}


def _restore_rng(states, cuda):
    torch.set_rng_state(states["torch"])
    if cuda and states["cuda"] is not None:
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def _plain_options(options):
    """Every recorded option of ``options`` (config.RunOptions) as a str/int/float/bool/None (the device as
    its name)."""
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
            for k, v in options.record().items()}


class TrainingSession:
    """One training run's progress, its checkpoint training_state.pt, and its stop signals.

    The stages tell it where they are (``begin_stage``, ``enter_step``/``leave_step`` from
    ``train_stage``, ``end_stage``, ``finish``). It writes the checkpoint (atomically) every
    ``options.checkpoint_every`` minutes, when SIGINT or SIGTERM arrives, on a hard Ctrl-C or out of
    memory between optimiser steps, and once all stages are done. The checkpoint holds every module's
    state_dict now and at the start of the current stage, every optimiser's state_dict, the stage and
    its last completed epoch (stage None: all done), the RNG states (torch CPU and CUDA, numpy, python
    random) and in patch mode the stage's patch generator, the monitor's stage results and loss
    history, the elapsed times, every option, and the name of the folder the run completes into.

    Signals: while ``stop_signals()`` is active, the first SIGINT or SIGTERM is noted and the training
    stops at the end of the epoch (the networks and optimisers are then consistent) by raising
    Interrupted; a second one stops it at once (KeyboardInterrupt), except during the optimiser
    steps. Without a run folder (``run=None``) the session only keeps the clocks: no files, no handlers.
    """

    def __init__(self, run=None, options=None, state=None):
        self.run = run
        self.options = options
        self.state = state
        self.cuda = options is not None and options.device.type == "cuda"
        self.every = 60.0 * options.checkpoint_every if options is not None else math.inf
        self.next_save = time.monotonic() + self.every
        self.stage, self.epoch, self.finished = None, 0, False
        self.reenter = None  # the stage a resumed run continues inside
        self.closed = None  # the stage just closed, while the next has not begun
        self.in_step = False
        self.pending = None  # the signal number received and not yet acted on
        self.saved_at = (state["stage"], state["epoch"]) if state else None
        self.modules, self.optimizers, self.monitor = {}, [], None
        self.stage_start = None
        self.samplers, self.sampler = {}, None  # each stage's fusion.patches.PatchSampler, the current one
        self.plateau = None  # the current stage's PlateauSchedule (--schedule auto)
        self.resumed_stage = False  # whether the current stage continues the checkpoint's
        before = state["seconds"] if state else 0.0
        self.started = time.perf_counter() - before
        self.stage_started = self.started

    # --- set-up

    def attach(self, modules, optimizers, monitor, samplers=None):
        """The run's modules ({name: module}), optimisers (duplicates dropped), Monitor and, in patch mode,
        each stage's fusion.patches.PatchSampler ({stage number: sampler}). When resuming, loads their
        checkpointed states, the stage results and the RNG states (a sampler's when its stage begins)."""
        self.modules, self.monitor = modules, monitor
        self.samplers = {n: s for n, s in (samplers or {}).items() if s is not None}
        self.optimizers = list({id(o): o for o in optimizers}.values())
        if self.state is None:
            return
        state = self.state
        _load_module_states(modules, state["modules"])
        if len(state["optimizers"]) != len(self.optimizers):
            raise DataError(f"{self.run.file(CHECKPOINT_NAME)}: the checkpoint has {len(state['optimizers'])} "
                            f"optimisers, this method {len(self.optimizers)}; it belongs to another version of "
                            "the code: start the run again without --resume")
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        monitor.stage_results = state["stage_results"]
        monitor.loss_history = state.get("loss_history", {})  # absent from checkpoints that predate it
        monitor.check_history = state.get("check_history", {})
        monitor.seconds = state["evaluation_seconds"]
        _restore_rng(state["rng"], self.cuda)
        self.stage, self.epoch, self.stage_start = state["stage"], state["epoch"], state["stage_start"]
        self.finished = state["stage"] is None
        self.reenter = state["stage"]

    @contextlib.contextmanager
    def stop_signals(self):
        """SIGINT and SIGTERM stop the training cleanly while this is active (only with a run folder,
        only in the main thread); the previous handlers are restored after it."""
        if self.run is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        # A signal the parent set to be ignored (nohup, a background job's SIGINT) stays ignored.
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)
                    if signal.getsignal(s) is not signal.SIG_IGN}
        try:
            yield
        except KeyboardInterrupt:
            if not self.in_step:
                self._save_quietly()
            raise self.interruption(self.pending or signal.SIGINT) from None
        except (RuntimeError, MemoryError) as exc:
            if is_out_of_memory(exc) and not self.in_step:
                self._save_quietly()
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def _on_signal(self, signum, frame):
        if self.pending is None:
            self.pending = signum
            log.warning("%s received: stopping at the end of this epoch and saving a checkpoint "
                        "(send it again to stop at once)", signal.Signals(signum).name)
        elif not self.in_step:
            raise KeyboardInterrupt

    # --- progress

    def completed(self, number):
        """True when stage ``number`` was completed before the run was resumed."""
        resumed = self.state
        return resumed is not None and (resumed["stage"] is None or number < resumed["stage"])

    def begin_stage(self, number, make_loss):
        """Start stage ``number``; returns its loss function (``make_loss()``) and its last completed
        epoch (0, or the checkpoint's when resuming inside this stage). A stage's fixed targets are
        computed from the networks as they were when it began, so on resume those states are loaded
        for ``make_loss``, then the checkpoint's current ones. In patch mode the stage's sampler
        continues from the checkpoint's state, so it draws the same patches as an uninterrupted run."""
        resumed = self.reenter == number
        self.resumed_stage = resumed
        self.stage, self.epoch, self.reenter, self.closed = number, 0, None, None
        self.sampler = sampler = self.samplers.get(number)
        if resumed:
            self.stage_start = self.state["stage_start"]
            self.in_step = True  # the modules pass through the stage's start: nothing to save meanwhile
            try:
                _load_module_states(self.modules, self.stage_start)
                loss_fn = make_loss()
                _load_module_states(self.modules, self.state["modules"])
                if sampler is not None:
                    sampler.load_state_dict(self.state.get("sampler"))
            finally:
                self.in_step = False
            self.epoch = self.state["epoch"]
            self.stage_started = time.perf_counter() - self.state["stage_seconds"]
            if self.run is not None:
                self.run.append_precision(f"resumed at stage {number}, epoch {self.epoch}")
        else:
            self.stage_start = _module_states(self.modules) if self.run is not None else None
            self.stage_started = time.perf_counter()
            loss_fn = make_loss()
        self._stop_if_asked()
        return loss_fn, self.epoch

    def plateau_schedule(self):
        """The current stage's --schedule auto rule (PlateauSchedule) over the run's modules and optimisers,
        continuing the checkpoint's when the stage resumes; saved with every checkpoint."""
        self.plateau = PlateauSchedule(self._snapshot, self._restore)
        if self.resumed_stage and self.state.get("plateau") is not None:
            self.plateau.load_state_dict(self.state["plateau"])
        return self.plateau

    def _snapshot(self):
        return {"modules": _module_states(self.modules),
                "optimizers": [copy.deepcopy(o.state_dict()) for o in self.optimizers]}

    def _restore(self, state):
        _load_module_states(self.modules, state["modules"])
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)

    def enter_step(self):
        self.in_step = True

    def record_loss(self, epoch, loss):
        """The loss of ``epoch`` of the current stage, read by ``train_stage``: kept in the monitor's
        loss history (saved in the checkpoint, written to metrics.json)."""
        if self.monitor is not None:
            self.monitor.record_loss(self.stage, epoch, loss)

    def leave_step(self, epoch):
        """The optimisers have stepped for ``epoch``: a consistent state to save or stop at."""
        self.epoch = epoch
        self.in_step = False
        if self.run is None:
            return
        self._stop_if_asked()
        if time.monotonic() >= self.next_save:
            self.save()

    def end_stage(self, number):
        """Stage ``number`` is closed (its results are in the monitor): a checkpoint from here on
        continues with the next stage."""
        self.stage, self.epoch, self.closed = number + 1, 0, number
        self.stage_start = None
        self.sampler = self.plateau = None
        self._stop_if_asked()

    def finish(self):
        """Every stage is done: save a last checkpoint (a run killed while writing its results resumes
        straight to them)."""
        self.finished = True
        if self.run is not None:
            self.save()

    def elapsed(self):
        """Training seconds, including those before a resume."""
        return time.perf_counter() - self.started

    def stage_seconds(self):
        """Seconds of the current stage, including those before a resume."""
        return time.perf_counter() - self.stage_started

    def where(self):
        """Where the run is, in words, for an out-of-memory report."""
        if self.finished:
            return "the final fusion"
        if self.closed is not None:
            return f"closing Stage {self.closed}"
        return "the set-up" if self.stage is None else f"Stage {self.stage}"

    # --- checkpoint

    def save(self):
        """Write training_state.pt (atomically); nothing before the first stage began."""
        if self.stage is None and not self.finished:
            return
        stage = None if self.finished else self.stage
        start = self.stage_start if self.stage_start is not None else _module_states(self.modules)
        state = {
            "format": CHECKPOINT_FORMAT, "stage": stage, "epoch": self.epoch,
            "modules": _module_states(self.modules), "stage_start": start,
            "optimizers": [o.state_dict() for o in self.optimizers],
            "rng": _rng_states(self.cuda),
            "sampler": self.sampler.state_dict(self.epoch) if self.sampler is not None else None,
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "stage_results": _plain(self.monitor.stage_results) if self.monitor else {},
            "loss_history": _plain(self.monitor.loss_history) if self.monitor else {},
            "check_history": _plain(self.monitor.check_history) if self.monitor else {},
            "evaluation_seconds": self.monitor.seconds if self.monitor else 0.0,
            "seconds": self.elapsed(), "stage_seconds": self.stage_seconds(),
            "options": _plain_options(self.options),
            "target": os.path.basename(self.run.target) if self.run.target != self.run.path else None,
        }
        atomic_write(self.run.file(CHECKPOINT_NAME), lambda f: torch.save(state, f))
        self.saved_at = (stage, self.epoch)
        self.next_save = time.monotonic() + self.every

    def _save_quietly(self):
        try:
            self.save()
        except (OSError, RuntimeError, MemoryError) as exc:
            log.warning("could not save the checkpoint: %s", exc)

    def remove_checkpoint(self):
        """A diverged run cannot be continued: drop its checkpoint."""
        if self.run is not None and os.path.exists(self.run.file(CHECKPOINT_NAME)):
            os.remove(self.run.file(CHECKPOINT_NAME))
            self.saved_at = None

    def _stop_if_asked(self):
        if self.pending is not None:
            self._save_quietly()
            raise self.interruption(self.pending)

    def interruption(self, signum):
        """The Interrupted exception for signal ``signum`` at the current stage and epoch."""
        if self.finished:
            where = "after the last stage"
        elif self.stage is None:
            where = "before the first stage"
        elif self.closed is not None:
            where = f"after stage {self.closed}"
        else:
            where = f"at stage {self.stage}, epoch {self.epoch}"
        return Interrupted(signum, where, self.run.path, self.saved_at)

    @contextlib.contextmanager
    def reporting(self, image, device):
        """Turn what stops a run into one line in precision.txt and one exception: TrainingDiverged
        ("aborted: ..."; the checkpoint is dropped), Interrupted ("interrupted at stage s, epoch e ..."),
        and running out of memory (torch.cuda.OutOfMemoryError, a CPU allocator RuntimeError,
        MemoryError), raised as OutOfMemory with the advice of ``out_of_memory_message``.
        ``image``: the image size in words (``image_size``); ``device``: the training device."""
        try:
            yield
        except TrainingDiverged as exc:
            self.run.append_precision(f"aborted: {exc}")
            self.remove_checkpoint()
            raise
        except Interrupted as exc:
            self.run.append_precision(f"{exc}; {exc.how_to_resume()}")
            raise
        except KeyboardInterrupt:  # outside the training's handlers: while writing the results
            exc = self.interruption(signal.SIGINT)
            self.run.append_precision(f"{exc}; {exc.how_to_resume()}")
            raise exc from None
        except (RuntimeError, MemoryError) as exc:
            if isinstance(exc, OutOfMemory) or not is_out_of_memory(exc):
                raise
            resume = self.run.path if os.path.exists(self.run.file(CHECKPOINT_NAME)) else None
            error = OutOfMemory(out_of_memory_message(self.where(), image, device, resume=resume,
                                                      patches=self.options.training_mode == "patches"))
            self.run.append_precision(f"aborted: {error}")
            raise error from None


def load_training_state(folder):
    """The checkpoint (training_state.pt, see TrainingSession) of the interrupted run in ``folder``,
    loaded on the CPU with ``torch.load(weights_only=True)``.

    Raises DataError when the run is complete (metrics.json is there), has no checkpoint, or the
    checkpoint cannot be read.
    """
    if os.path.exists(os.path.join(folder, "metrics.json")):
        raise DataError(f"{folder}: this run is complete (metrics.json is there), there is nothing to resume; "
                        "start a new run without --resume")
    path = os.path.join(folder, CHECKPOINT_NAME)
    if not os.path.exists(path):
        raise DataError(f"{path}: no training checkpoint; the run stopped before its first checkpoint, or "
                        f"{folder} is not a run folder: start the run again without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a damaged file
        raise DataError(f"{path}: the training checkpoint cannot be read ({type(exc).__name__}); it is "
                        "damaged: start the run again without --resume") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a training checkpoint of this version (format "
                        f"{state.get('format') if isinstance(state, dict) else None}, expected "
                        f"{CHECKPOINT_FORMAT}); start the run again without --resume")
    return state


# What a run did before an option existed: a checkpoint that predates the option resumes with this value.
OPTIONS_BEFORE_THEY_EXISTED = {"degradation": "original", "scf_place": "inverse", "scf_attention": "sigmoid",
                               "schedule": "paper"}


def resumed_options(args, state, anew=RESUMABLE_OPTIONS):
    """The options of a resumed run: the checkpoint's, so that resuming cannot change the result,
    except ``args.resume`` and those of --threads, --device and --checkpoint_every named in ``anew``,
    which keep ``args``' values. Options the checkpoint predates take what the run did before they existed
    (OPTIONS_BEFORE_THEY_EXISTED), else ``args``' values.

    Raises DataError when the checkpoint's device is CUDA and this machine has none (and --device
    was not given anew).
    """
    options = copy.copy(args)
    vars(options).update(OPTIONS_BEFORE_THEY_EXISTED)
    vars(options).update({k: v for k, v in state["options"].items() if k not in anew and k != "resume"})
    if "device" not in anew:
        options.device = torch.device(options.device)
        if options.device.type == "cuda" and not torch.cuda.is_available():
            raise DataError(f"{args.resume}: the run was trained on {options.device}, which this machine does "
                            "not have; give --device cpu to continue it on the CPU")
    return options


def resume_overrides(argv):
    """Of the options named on the command line ``argv`` with --resume, those a resumed run takes anew
    (of RESUMABLE_OPTIONS). Raises DataError naming any other option: a resumed run keeps its own."""
    parser = build_parser()
    unset = object()  # argparse leaves an attribute the namespace already has alone unless it is given
    blank = argparse.Namespace(**{dest: unset for dest in vars(parser.parse_args([]))})
    given = {dest for dest, value in vars(parser.parse_args(argv, namespace=blank)).items() if value is not unset}
    given.discard("resume")
    others = sorted(given - set(RESUMABLE_OPTIONS))
    if others:
        raise DataError(f"--resume continues a run with the options it was started with: drop "
                        f"{', '.join('--' + o for o in others)} (only "
                        f"{', '.join('--' + o for o in RESUMABLE_OPTIONS)} may be given again)")
    return tuple(o for o in RESUMABLE_OPTIONS if o in given)
