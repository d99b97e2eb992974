"""One fusion run from the input pair to the run folder, as UDALN's Algorithm 1 (Li et al., IEEE GRSL
2022) and its successors run it: load the pair (``load_pair``), build the method's networks and run its
three stages (``train``, ``run_stage``), write X_hat = SpeUnet(Z) and its scores (``write_results``);
``fuse`` does all of it. Each method's networks and stages are in ``methods`` (one module per paper);
``train_all_special.py`` is the command line over ``fuse``.

Y: LR-HSI, Z: HR-MSI, X: HR-HSI. Degradation model Y = X P (PSF, SpaDnet), Z = X S (SRF, SpeDnet);
both paths to the LR-MSI must agree: Z_l1 = Y S = Z_l2 = Z P.
"""
import contextlib
import logging
import os
import time

import torch

from config import RunOptions
from data_loader import Dataset, load_real_pair
from evaluation import format_metrics
from func import (RESUMABLE_OPTIONS, TrainingSession, load_training_state, resumed_options, set_seed,
                  train_stage)
from fusion.figures import draw_run_figures
from fusion.memory import check_memory, image_size, tune_cpu_allocator
from fusion.monitor import Monitor
from fusion.pair import Pair, hwc, reduced_resolution_pair
from fusion.patches import choose_training_mode, validation_patches
from fusion.results import fuse_and_write, streams
from fusion.run_folder import RunFolder, run_folder_name
from imagery.quicklook import save_quicklook
from methods import METHODS, check_options

NO_REFERENCE_INDICES = ("D_lambda", "D_s", "QNR")
log = logging.getLogger(__name__)


def fuse(args, anew=RESUMABLE_OPTIONS, load=None):
    """Train the selected method on the selected pair and write its run folder; returns the folder.

    ``load(args)`` gives the pair and its cube's name (default ``load_pair``: the files the options
    name; fusion.api.fuse_arrays gives arrays).

    With ``args.resume`` the interrupted run in that folder continues from its checkpoint with the
    checkpoint's options (of --threads, --device and --checkpoint_every, those named in ``anew`` are
    taken from ``args``). ``args`` (``config.get_args``) is resolved once, after the pair is loaded, into
    the run's frozen ``config.RunOptions`` (``resolve_options``). Raises DataError,
    OutOfMemory (before anything is written when the run clearly cannot fit), TrainingDiverged and
    func.Interrupted (SIGINT/SIGTERM; docs/run_folder.md).
    """
    state = load_training_state(args.resume) if args.resume else None
    if state is not None:
        args = resumed_options(args, state, anew)
    if args.device.type == "cpu":
        tune_cpu_allocator()
    set_seed(args.seed)
    with collected_warnings() as warnings:
        pair, cube = (load or load_pair)(args)
        options, batch_pixels = resolve_options(args, pair)  # before the run folder: patch mode is in its name
        check_options(options, pair, streamed=streams(pair))
        check_memory(options.method, pair.Y.shape, pair.Z.shape, pair.scale, options.device,
                     batch_pixels=batch_pixels, reference=pair.has_reference)
        if state is None:
            run = RunFolder.create(options, run_folder_name(options, cube))
            run.write_options(options)
        else:
            run = RunFolder.resume(args.resume, state)
            log.info("resuming from stage %s, epoch %s", state["stage"], state["epoch"])
        log.info("run folder: %s", run.path)
        session = TrainingSession(run, options, state)
        with session.reporting(image_size(pair.Y.shape, pair.Z.shape), options.device):
            nets, monitor = train(options, pair, run, session)
            results = write_results(options, pair, nets, monitor, run, session.elapsed(), warnings)
    run.complete()
    log.info("%s (%.1f s) -> %s", results["summary"], results["total_seconds"], run.path)
    return run


@contextlib.contextmanager
def collected_warnings():
    """The messages of the warnings (and errors) logged meanwhile, in a list that grows as they come:
    metrics.json keeps them ("warnings"), and fusion.batch reports them per pair."""
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger().removeHandler(handler)


def load_pair(args):
    """The pair to fuse on the training device and the name of its cube (None for a real pair): a real
    pair (--lr_hsi/--hr_msi; its r is ``pair.scale``) or one simulated from a reference cube by Wald's
    protocol."""
    if args.lr_hsi:
        return Pair.from_real(load_real_pair(args), args.device), None
    dataset = Dataset(args)
    cube = os.path.splitext(os.path.basename(dataset.imgpath_list[args.image_index]))[0]
    return Pair.from_dataset(dataset, args.image_index, args.device), cube


def resolve_options(args, pair):
    """The run's options, resolved once and frozen (``config.RunOptions``): ``args`` with the ratio r of
    ``pair``, the training mode chosen for it (``fusion.patches.choose_training_mode``, logged) and each
    stage's threads; and the HR pixels of one step's batch in patch mode (None in whole-image mode)."""
    mode = choose_training_mode(args, pair)
    return RunOptions.resolve(args, pair.scale, mode.mode, mode.patch_size), mode.batch_pixels


def train(options, pair, run, session=None):
    """Build the selected method and run its stages selected by --stages (``options``: config.RunOptions),
    on the whole image or, in patch mode (fusion.patches, resolved by ``fuse``), on a fresh batch of patches
    each step, with the checks on a fixed subset of patches. ``session`` (a func.TrainingSession)
    checkpoints the run, resumes it and stops it on SIGINT/SIGTERM; without one the stages just run."""
    nets, stages = METHODS[options.method](options, pair)
    monitor = Monitor(pair, nets, run, validation=validation_patches(options, pair))
    session = session or TrainingSession()
    session.attach(nets.checkpoints(), [o for stage in stages for o in stage.optimizers], monitor,
                   samplers={stage.number: stage.sampler for stage in stages})
    with session.stop_signals():
        for stage in stages:
            if str(stage.number) in options.stages:
                run_stage(options, stage, monitor, session)
        session.finish()
    return nets, monitor


def run_stage(options, stage, monitor, session):
    """Train one stage on its schedule (--lr_stageN, --epoch_stageN, --decay_begin_epoch_stageN; with
    --schedule auto, cut short where its loss stops falling, func.PlateauSchedule); a stage completed before
    a resume is skipped, the one interrupted continues after its last epoch."""
    title = f"Stage {stage.number}"
    if not stage.optimizers:
        log.info("%s skipped: nothing to learn (every module in it is fixed)", title)
        return
    n = stage.number
    if session.completed(n):
        return
    if options.device.type == "cpu":
        torch.set_num_threads(options.stage_threads[n])
    loss_fn, done = session.begin_stage(n, stage.make_loss)
    plateau = session.plateau_schedule() if options.schedule == "auto" else None
    train_stage(title, stage.optimizers, loss_fn, **options.stage_schedule(n),
                evaluate=lambda epoch, lr, last: monitor(stage.watch, epoch, lr, final=last, stage=n,
                                                         seconds=session.elapsed() - monitor.seconds),
                eval_every=options.eval_every, authors_script=stage.authors_lr_script,
                start_epoch=done, progress=session, plateau=plateau)
    if plateau is not None:
        monitor.latest["schedule"] = plateau.summary(session.epoch)
    monitor.close_stage(n, title, stage.watch, session.stage_seconds())
    session.end_stage(n)


def write_results(options, pair, nets, monitor, run, seconds, warnings=()):
    """The run folder's results: precision.txt's last lines, the modules, My_Out.mat (and My_Out.tif or
    My_Out.hdr for a georeferenced pair) in the input's units, quicklook.png, the reduced-resolution
    protocol when asked, the figures (fig2_consistency.png, fig3_error_maps.png, psf_srf.png,
    loss_curves.png) and metrics.json last (it marks the run complete). A whole scene is fused,
    written and scored tile by tile (fusion.results.fuse_and_write). Returns the metrics."""
    start = time.perf_counter()
    fused = fuse_and_write(run, pair, nets, pair.hsi_factor)
    output_seconds = time.perf_counter() - start
    results = {"method": options.method, "data_name": None if options.lr_hsi else options.data_name, "lr_hsi": options.lr_hsi,
               "hr_msi": options.hr_msi, "scale_factor": options.scale_factor, "stages": options.stages, "seed": options.seed,
               "options": {k: str(v) if k == "device" else v for k, v in sorted(options.record().items())}}
    lines = []
    if pair.has_reference:
        results["final"] = fused.final
        lines.append(f"final: {format_metrics(results['final'])}")
    results["no_reference"] = quality = fused.quality
    lines.append("no reference: " + ", ".join(f"{k} {v:.4f}" for k, v in quality.items() if k in NO_REFERENCE_INDICES))
    if options.reduced_resolution:
        results["reduced_resolution"] = reduced_resolution(options, pair, run)
        lines.append(f"reduced resolution (against the LR-HSI): {format_metrics(results['reduced_resolution'])}")
    results.update(total_seconds=seconds, output_seconds=output_seconds, summary="; ".join(lines),
                   warnings=list(warnings))
    run.append_precision("\n".join(lines + [f"total time:{seconds}"]))
    for name, module in nets.checkpoints().items():
        run.save_module(name, module)
    psf, true_psf = monitor.psf_comparison()
    save_quicklook(run.file("quicklook.png"), hwc(pair.Y), hwc(pair.Z), fused.image, psf,
                   monitor.estimated_srf(), hsi_wavelengths=pair.wavelengths,
                   reference=pair.X, true_psf=true_psf if pair.known_degradations else None,
                   true_srf=pair.srf if pair.known_degradations else None, msi_band_names=pair.msi_band_names,
                   title=os.path.basename(run.target or run.path))
    draw_run_figures(run, pair, nets, monitor, fused)
    results.update({
        "stage_seconds": {s: r["seconds"] for s, r in monitor.stage_results.items()},
        "evaluation_seconds": monitor.seconds, "stage_results": monitor.stage_results,
        "estimated_psf": monitor.estimated_psf(), "true_psf" if pair.known_degradations else "nominal_psf": pair.psf,
        "estimated_srf": monitor.estimated_srf(), "true_srf" if pair.known_degradations else "nominal_srf": pair.srf,
        **monitor.degradation_errors(), "loss_history": monitor.loss_history,
        "check_history": monitor.check_history, "data": data_facts(pair),
    })
    run.save_metrics(results)
    return results


def data_facts(pair):
    """metrics.json's "data": the loading facts and what the figures need to redraw the run (band centres
    in nm or None, MSI band names or None; for a real pair the output's no-data value)."""
    facts = {**pair.info, "wavelengths": pair.wavelengths, "msi_band_names": pair.msi_band_names}
    if pair.source is not None:
        facts["nodata"] = pair.source.nodata
    return facts


def reduced_resolution(options, pair, run):
    """Fuse the reduced-resolution pair with the same method and options in ``run``'s sub-folder
    reduced_resolution/ and score the result against the LR-HSI (all metrics); returns the metrics."""
    sub = RunFolder.inside(run, "reduced_resolution")
    rr = reduced_resolution_pair(pair)
    log.info("reduced-resolution protocol: fusing the pair degraded once more by r = %d (%d x %d LR-HSI pixels) "
             "in %s", rr.scale, *rr.Y.shape[2:], sub.path)
    set_seed(options.seed)
    nets, _ = train(options, rr, sub)
    # In the LR-HSI's units (its factor), without the no-data value: as this protocol always wrote it.
    metrics = fuse_and_write(sub, rr, nets, pair.hsi_factor, fill_nodata=False, no_reference=False,
                             composite=False).final
    for name, module in nets.checkpoints().items():
        sub.save_module(name, module)
    sub.save_metrics({"final": metrics, "reference": "the LR-HSI", "degradation": "Gaussian PSF, size r, FWHM r"})
    sub.append_precision(f"reduced resolution, against the LR-HSI: {format_metrics(metrics)}")
    log.info("reduced resolution, against the LR-HSI: %s", format_metrics(metrics))
    return metrics
