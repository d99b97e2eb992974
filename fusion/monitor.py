"""The diagnostics of a training run (``Monitor``): each network output against its simulated truth,
written to precision.txt in the original UDALN code's wording and kept for metrics.json."""
import bisect
import logging
import time

import numpy as np
import torch

from evaluation import evaluate, format_metrics
from fusion.pair import mosaic
from model.degradation import on_support

log = logging.getLogger(__name__)


class Monitor:
    """The diagnostics the original logs, computed every --eval_every epochs and at each stage's end.

    Each check compares a network output with its simulated truth; the latest of each stage is
    written to precision.txt in the original's wording and returned for metrics.json.
    """

    def __init__(self, pair, nets, run, validation=None):
        """``validation``: in patch mode, the fixed batch of patches with their truths
        (fusion.patches.validation_patches, a fusion.pair.PairView) that the checks run on instead of the
        whole image, so that they stay cheap on a large scene; None checks the whole image."""
        self.pair, self.nets, self.run = pair, nets, run
        self.view = pair if validation is None else validation
        self.latest = {}
        self.labels = {}
        self.stage_results = {}
        self.loss_history = {}  # {"<stage>": {"epoch": [...], "loss": [...]}}, see record_loss
        self.check_history = {}  # {"<stage>": [{"epoch", "seconds", "lr", "checks"}, ...]}, see __call__
        self.seconds = 0.0  # time spent evaluating, reported in metrics.json

    def estimated_psf(self):
        return self.nets.spa.kernel.cpu().numpy()

    def psf_comparison(self):
        """The learned PSF and the true (or a real pair's nominal) one, both in correlation form and on the
        larger of their two supports (model.degradation.on_support): PSFs of different sizes (--psf_size,
        --sim_psf_size) are compared on the HR pixels each LR pixel reads. float64 K x K arrays."""
        estimated, truth = self.estimated_psf(), self.pair.psf[::-1, ::-1]
        size = max(estimated.shape[0], truth.shape[0])
        return on_support(estimated, size, self.pair.scale), on_support(truth, size, self.pair.scale)

    def estimated_srf(self):
        return self.nets.spe.srf().detach().cpu().numpy()

    def degradation_errors(self):
        """Relative Frobenius errors of the estimated PSF and SRF against the truth (simulated pairs), and
        the PSF's sum (a learned PSF summing far from 1 has absorbed a radiometric difference)."""
        psf, true_psf = self.psf_comparison()
        errors = {"psf_sum": float(psf.sum())}
        if self.pair.known_degradations:
            srf = self.estimated_srf()
            errors["psf_rel_error"] = float(np.linalg.norm(psf - true_psf) / np.linalg.norm(true_psf))
            errors["srf_rel_error"] = float(np.linalg.norm(srf - self.pair.srf) / np.linalg.norm(self.pair.srf))
        return errors

    def checks(self, watch):
        """(key in metrics.json, the original's label, truth, estimate, valid mask) of the groups in ``watch``:
        'degradation', 'inverse', 'spatial_inverse', 'fusion'. Checks against the truth need a simulated pair.
        In patch mode they run on the validation patches, as mosaics ((B P) x P x C; one image: its
        H x W x C, fusion.pair.mosaic)."""
        p, nets = self.view, self.nets
        truth = p.has_reference
        checks = []
        if "degradation" in watch:
            z_l1_tensor, z_l2_tensor = nets.spe(p.Y), nets.spa(p.Z)
            z_l1, z_l2 = mosaic(z_l1_tensor), mosaic(z_l2_tensor)
            # As Loss1 compares them: Z_l1 harmonised (GCE), Z_l2 calibrated (MSIGain).
            checks.append(("consistency", "two generated images, train", mosaic(nets.calibrate(z_l2_tensor)),
                           mosaic(nets.harmonise(z_l1_tensor)), p.lr_valid))
            if p.lrmsi_fromlrhsi is not None:
                checks += [("srf_test", "SRF: generated lrmsifromlhsi and true lrmsifromlhsi ", p.lrmsi_fromlrhsi,
                            z_l1, p.lr_valid),
                           ("psf_test", "PSF: generated lrmsifrommsi and true lrmsifrommsi ", p.lrmsi_frommsi, z_l2,
                            p.lr_valid)]
        if "inverse" in watch:
            checks.append(("inverse_lrhsi", "generated lrhsi via SpeUnet and true lrhsi.",
                           mosaic(p.Y), mosaic(nets.up(nets.lr_msi(p.Z))), p.lr_valid))
        x_hat = nets.fuse(p.Z, p.Y) if {"spatial_inverse", "fusion"} & set(watch) else None
        if "spatial_inverse" in watch:
            x_spa = nets.spa_up(p.Y)
            checks.append(("pretraining_consistency", "generated hrhsi via SpaUp and via SpeUp, train",
                           mosaic(x_hat), mosaic(x_spa), p.hr_valid))
            if truth:
                checks.append(("spatial_inverse", "generated hrhsi via SpaUp and true hhsi", p.X, mosaic(x_spa),
                               p.out_valid))
        if "fusion" in watch:
            if "degradation" in watch:
                checks += [("reprojected_lrhsi", "generated lrhsi via SpaDnet from preHHSI and true lrhsi",
                            mosaic(p.Y), mosaic(nets.spa(x_hat)), p.lr_valid),
                           ("reprojected_hrmsi", "generated hrMSI via SpeDnet from preHHSI and true hrMSI",
                            mosaic(p.Z), mosaic(nets.to_msi(x_hat)), p.out_valid)]
            if truth:
                checks.append(("fusion", "generated HHSI and true hhsi", p.X, mosaic(x_hat), p.out_valid))
        return checks

    @torch.inference_mode()
    def __call__(self, watch, epoch, lr, final=False, stage=None, seconds=None):
        """Evaluate the check groups in ``watch`` (see ``checks``); returns and keeps the latest results.
        With ``stage`` they are also kept in ``check_history`` (metrics.json's "check_history", the curves
        of benchmarks/convergence.py), with ``seconds``, the run's training time so far."""
        start = time.perf_counter()
        self.latest = {"epoch": epoch, "lr": lr, "checks": {}}
        self.labels = {}
        for key, label, truth, estimate, valid in self.checks(watch):
            diff = np.abs(truth - estimate)
            metrics = {"L1": float(np.mean(diff if valid is None else diff[valid]))}
            metrics.update(evaluate(truth, estimate, self.pair.scale, ssim=key == "fusion" and final, mask=valid))
            self.latest["checks"][key] = metrics
            self.labels[key] = label
        if "degradation" in watch:
            self.latest.update(self.degradation_errors())
        if stage is not None:
            self._record_checks(stage, seconds)
        self.seconds += time.perf_counter() - start
        return self.latest

    def _record_checks(self, stage, seconds):
        """Append the latest checks' L1, PSNR and SAM to ``check_history[str(stage)]``; a resumed stage runs
        again the epochs after its checkpoint, so entries at or after this epoch are replaced."""
        history = self.check_history.setdefault(str(stage), [])
        epoch = self.latest["epoch"]
        history[:] = [entry for entry in history if entry["epoch"] < epoch]
        checks = {key: {name: m[name] for name in ("L1", "PSNR", "SAM") if name in m}
                  for key, m in self.latest["checks"].items()}
        history.append({"epoch": int(epoch), "seconds": seconds, "lr": self.latest["lr"], "checks": checks})

    def record_loss(self, stage, epoch, loss):
        """Keep the training loss (float) of ``stage`` at ``epoch`` in ``loss_history`` (metrics.json's
        "loss_history": {"<stage>": {"epoch": [...], "loss": [...]}}, epochs ascending). A resumed stage
        runs again the epochs after its checkpoint: entries at or after ``epoch`` are replaced."""
        history = self.loss_history.setdefault(str(stage), {"epoch": [], "loss": []})
        keep = bisect.bisect_left(history["epoch"], epoch)
        del history["epoch"][keep:], history["loss"][keep:]
        history["epoch"].append(int(epoch))
        history["loss"].append(float(loss))

    def close_stage(self, stage, title, watch, seconds):
        """Write the stage's final diagnostics to precision.txt and keep them for metrics.json."""
        lines = [f"results in {title}"]
        for key, m in self.latest["checks"].items():
            values = ", ".join(f"{k.lower() if k != 'CC' else k}:{v}" for k, v in m.items())
            lines.append(f"{self.labels[key]} epoch:{self.latest['epoch']} lr:{self.latest['lr']}\ntest:{values}")
        if "degradation" in watch:
            est_srf = self.estimated_srf()
            support = [slice(first, last + 1) for first, last in self.pair.sp_range]
            truth = "true" if self.pair.known_degradations else "nominal"
            lines += [f"estimated PSF:\n{self.estimated_psf()}", f"{truth} PSF:\n{self.pair.psf}",
                      f"estimated SRF:\n{[est_srf[s, j] for j, s in enumerate(support)]}",
                      f"{truth} SRF:\n{[self.pair.srf[s, j] for j, s in enumerate(support)]}"]
        lines.append(f"time of {title}:{seconds}\n")
        self.run.append_precision("\n".join(lines))
        self.stage_results[stage] = dict(self.latest, seconds=seconds)
        fused = self.latest["checks"].get("fusion")
        log.info("%s done in %.1f s%s", title, seconds, f": {format_metrics(fused)}" if fused else "")
