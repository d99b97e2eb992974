"""The diagnostics of a training run (``Monitor``): each network output against its simulated truth,
written to precision.txt in the original UDALN code's wording and kept for metrics.json."""
import time

import numpy as np
import torch

from evaluation import evaluate, format_metrics
from func import log
from fusion.pair import hwc


class Monitor:
    """The diagnostics the original logs, computed every --eval_every epochs and at each stage's end.

    Each check compares a network output with its simulated truth; the latest of each stage is
    written to precision.txt in the original's wording and returned for metrics.json.
    """

    def __init__(self, pair, nets, run):
        self.pair, self.nets, self.run = pair, nets, run
        self.latest = {}
        self.labels = {}
        self.stage_results = {}
        self.seconds = 0.0  # time spent evaluating, reported in metrics.json

    def estimated_psf(self):
        return self.nets.spa.kernel.cpu().numpy()

    def estimated_srf(self):
        return self.nets.spe.srf().detach().cpu().numpy()

    def degradation_errors(self):
        """Relative Frobenius errors of the estimated PSF and SRF against the truth (simulated pairs), and
        the PSF's sum (a learned PSF summing far from 1 has absorbed a radiometric difference)."""
        psf = self.estimated_psf()
        errors = {"psf_sum": float(psf.sum())}
        if self.pair.known_degradations:
            true_psf = self.pair.psf[::-1, ::-1]  # correlation form, as SpaDnet stores it
            srf = self.estimated_srf()
            errors["psf_rel_error"] = float(np.linalg.norm(psf - true_psf) / np.linalg.norm(true_psf))
            errors["srf_rel_error"] = float(np.linalg.norm(srf - self.pair.srf) / np.linalg.norm(self.pair.srf))
        return errors

    def checks(self, watch):
        """(key in metrics.json, the original's label, truth, estimate, valid mask) of the groups in ``watch``:
        'degradation', 'inverse', 'spatial_inverse', 'fusion'. Checks against the truth need a simulated pair."""
        p, nets = self.pair, self.nets
        truth = p.has_reference
        checks = []
        if "degradation" in watch:
            z_l1_tensor = nets.spe(p.Y)
            z_l1, z_l2 = hwc(z_l1_tensor), hwc(nets.spa(p.Z))
            checks.append(("consistency", "two generated images, train", z_l2, hwc(nets.harmonise(z_l1_tensor)),
                           p.lr_valid))
            if p.lrmsi_fromlrhsi is not None:
                checks += [("srf_test", "SRF: generated lrmsifromlhsi and true lrmsifromlhsi ", p.lrmsi_fromlrhsi,
                            z_l1, p.lr_valid),
                           ("psf_test", "PSF: generated lrmsifrommsi and true lrmsifrommsi ", p.lrmsi_frommsi, z_l2,
                            p.lr_valid)]
        if "inverse" in watch:
            checks.append(("inverse_lrhsi", "generated lrhsi via SpeUnet and true lrhsi.",
                           hwc(p.Y), hwc(nets.up(nets.spa(p.Z))), p.lr_valid))
        x_hat = nets.fuse(p.Z) if {"spatial_inverse", "fusion"} & set(watch) else None
        if "spatial_inverse" in watch:
            x_spa = nets.spa_up(p.Y)
            checks.append(("pretraining_consistency", "generated hrhsi via SpaUp and via SpeUp, train",
                           hwc(x_hat), hwc(x_spa), p.hr_valid))
            if truth:
                checks.append(("spatial_inverse", "generated hrhsi via SpaUp and true hhsi", p.X, hwc(x_spa),
                               p.out_valid))
        if "fusion" in watch:
            if "degradation" in watch:
                checks += [("reprojected_lrhsi", "generated lrhsi via SpaDnet from preHHSI and true lrhsi",
                            hwc(p.Y), hwc(nets.spa(x_hat)), p.lr_valid),
                           ("reprojected_hrmsi", "generated hrMSI via SpeDnet from preHHSI and true hrMSI",
                            hwc(p.Z), hwc(nets.to_msi(x_hat)), p.out_valid)]
            if truth:
                checks.append(("fusion", "generated HHSI and true hhsi", p.X, hwc(x_hat), p.out_valid))
        return checks

    @torch.inference_mode()
    def __call__(self, watch, epoch, lr, final=False):
        """Evaluate the check groups in ``watch`` (see ``checks``); returns and keeps the latest results."""
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
        self.seconds += time.perf_counter() - start
        return self.latest

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
