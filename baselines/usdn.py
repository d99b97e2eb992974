"""uSDN: the unsupervised sparse Dirichlet-net for hyperspectral super-resolution.

Y. Qu, H. Qi and C. Kwan, "Unsupervised sparse Dirichlet-net for hyperspectral image super-resolution",
Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2511-2520, 2018.

Two encoder-decoder networks share one linear decoder D (K x C, K = 12 components): the LR-HSI network
learns S_h = E_h(Y) and D such that Y = S_h D (the decoder's rows are the endmembers), and the HR-MSI
network learns S_m = E_m(Z) such that Z = S_m D R (R: the SRF) with D fixed; the fused image is X = S_m D.
Each encoder draws its representation from a sparse Dirichlet distribution by stick breaking, so that every
pixel's components are non-negative and sum to at most 1 (the abundances' physical constraints). The
training (pbAuto_uSDN.py, ``betapan.train``) is, step by step on all pixels at once:

1. the LR-HSI network alone, with the squared error, the volume of the simplex the decoder spans
   (weight 1e-4) and the entropy of the normalised representation (its sparsity, weight 1e-3), until the
   reconstruction of Y is within ``tol`` = 1.5 degrees (checked every 50 steps);
2. the HR-MSI encoder fitted to the LR-HSI's representation on an LR copy of Z (mean squared error, 15,000
   steps or until the error is below 1e-5);
3. the HR-MSI encoder trained on Z's squared error and sparsity, with, every 20 steps, one step that
   minimises the angle between its representation of the LR copy of Z and S_h (the paper's "angular
   difference" that keeps the spectra of the two networks aligned), until the stopping rule below.

The quantities, as the authors' code computes them, are on mean-centred columns: Y and Z minus their band
means m_Y, m_Z (the LR copy of Z minus its own), the HSI decoder output S D is centred (the LR loss
compares it with Y - m_Y), the fused image is S_m D + m_Y, and Z's reconstruction (S_m D + m_Y) R - m_Z.
"Squared error" is the sum over pixels of each band's squared error, averaged over the bands; the volume is
the mean of the C x C matrix (D + m_Y)' (D + m_Y); the angle of the representations is per component, between
the columns of the two N x K matrices, averaged and divided by pi. The degrees tested in step 1 (and in
the stopping rule) are the same angle between band images: per band, the angle between the column of
the estimate (clipped to [0, 1]) and that of the target, averaged over the bands.

Defaults are those of the authors' code (github.com/aicip/uSDN, uSDN.py and pbAuto_uSDN.py, commit
d5ea85a): K = 12, dense layers of width 3 (four in the uniform branch of each encoder, two in its beta
branch, each seeing the input and all earlier layers, no activations), Adam at 1e-3 for every step
(TensorFlow's defaults otherwise), the weights above and at most 500,000 steps in all. What the code
assumes:

- the SRF is given (the paper's R, a 3 x 31 table for its CAVE demo; here ``srf``), and the LR-HSI encoder
  starts by projecting each pixel through it; the PSF is not used: the LR copy of Z is Z resampled by the
  nearest pixel (``scipy.ndimage.zoom(Z, 1 / r, order=0)``, the code's ``multiLR``); ``psf`` is checked and
  not used;
- the data are reflectance-like in [0, 1] (the clipping of the angle tests).

Where the code does something other than it says, this module does what the code does, since that is what
produced the paper's numbers:
- the learning rate and the loss weights are "decayed" by 0.99977 each step in Python after the graph was
  built with their initial values, so they stay constant; the HR-MSI sparsity uses the LR-HSI's weight
  (1e-3; ``sp_r_msi`` = 1e-4 is never used) and the HR stage the LR rate (``p_rate`` is unused);
- the stopping rule keeps the last state, the one that was worse than the state 20 steps before.

The stopping rule of the authors' demo is not blind: the fused image is scored against the reference every
20 steps, and the training stops when its SAM (the band angle) and its RMSE both rose by more than 0.01 %
since the last check. ``stop="reference"`` (with ``reference`` = X) reproduces it. It also stops at the
first wobble of Adam: on the Houston 2018 crop at r = 4 (seed 0) it stopped 50 steps into step 3, at 30.0
dB, while the image, scored against the reference, went on improving until about step 17,000 (its band
angle from 4.7 to 1.9 degrees). The blind default, ``stop="plateau"``, scores the reconstruction of the
HR-MSI instead, which needs no reference (the evaluation the code has just above the reference one,
commented out), stops when its RMSE has not improved for ``patience`` = 100 checks (2,000 steps), and keeps
the encoder of the best check: 37.4 dB there.

Implementation: PyTorch, float32, the networks as small modules (``DenseStack``, ``DirichletEncoder``,
``SharedDecoder``) and one Adam optimiser per objective, as the code's four ``optimize_loss`` calls. Two
rewritings change the cost, not the function: each encoder's linear layers are composed into one affine
map before it meets the N pixels (``DenseStack.affine``), and u^(1/b) is computed as exp(log sigmoid / b).
Adam adds its epsilon after the bias correction (torch) where TensorFlow 1 adds it to the uncorrected
sqrt(v); the acos of the angle loss is taken of a cosine clipped to 1 - 1e-6 (float32), where TensorFlow
lets a cosine of exactly 1 give an infinite gradient. benchmarks/tensorflow_reference.py runs the
authors' code on the same pair for the comparison in tests/baselines/test_tensorflow_reference.py.
"""
import copy
import numbers

import numpy as np
import scipy.ndimage
import torch
from torch import nn

from baselines.operators import check_inputs, check_integer
from imagery.errors import DataError

COMPONENTS = 12           # uSDN.py: num
WIDTH = 3                 # uSDN.py: ly, the width of every dense layer (nLRlevel = nHRlevel = [3] * 5)
UNIFORM_LAYERS = 4        # pbAuto_uSDN.py: layers 11-14 of encoder_uniform_*
BETA_LAYERS = 2           # pbAuto_uSDN.py: layers 21-22 of encoder_beta_*
LEARNING_RATE = 1e-3      # uSDN.py: lr_rate, used by all four optimisers
MAX_STEPS = 500_000       # uSDN.py: maxiter
TOLERANCE = 1.5           # uSDN.py: tol, degrees: the LR-HSI network's target band angle
VOLUME_WEIGHT = 1e-4      # uSDN.py: vol_r
SPARSITY_WEIGHT = 1e-3    # uSDN.py: sp_r_lsi, also the HR-MSI's (module docstring)
INIT_STEPS = 15_000       # uSDN.py: init_num
INIT_LOSS_STOP = 1e-5     # pbAuto_uSDN.py: the initialisation ends early below this loss
LR_CHECK_EVERY = 50       # pbAuto_uSDN.py: the LR-HSI band angle is tested every 50 steps
HR_CHECK_EVERY = 20       # pbAuto_uSDN.py: the angle step and the stopping test every 20 steps
WORSE = 1 - 1e-4          # pbAuto_uSDN.py: previous / current below this counts as worse
EPS = 1e-8                # pbAuto_uSDN.py: eps of the sparsity and angle losses
STOPS = ("plateau", "reference")
PATIENCE = 100            # plateau: checks (of 20 steps) without a better HR-MSI RMSE before it stops


# ----------------------------------------------------------------------------- the networks

class DenseStack(nn.Module):
    """h_1 = W_1 a + b_1, h_k = W_k [x, h_1, ..., h_(k-1)] + b_k, out = W_o [x, h_1, ..., h_n] + b_o: the
    densely stacked linear layers of the authors' encoders (no activations; ``a`` is x, or for the LR-HSI
    encoder x projected through the SRF).

    Without activations the stack is one affine map of its input, which ``affine`` composes from the small
    weight matrices: a step then makes one product with the N pixels instead of one per layer, and the
    parameters (hence the gradients and the training) are those of the layers.
    """

    def __init__(self, first_features, base_features, widths, out_features):
        super().__init__()
        self.first = nn.Linear(first_features, widths[0])
        stacked = base_features + widths[0]
        self.stacked = nn.ModuleList()
        for width in widths[1:]:
            self.stacked.append(nn.Linear(stacked, width))
            stacked += width
        self.out = nn.Linear(stacked, out_features)

    def affine(self, first, base):
        """(M, c) such that the stack's output is x @ M + c, given the affine maps (M, c) from the
        encoder's input x of the stack's first input a (``first``) and of the input it stacks on (``base``)."""
        features = _concatenate(base, _through(first, self.first))
        for layer in self.stacked:
            features = _concatenate(features, _through(features, layer))
        return _through(features, self.out)


def _through(affine_map, layer):
    matrix, offset = affine_map
    return matrix @ layer.weight.T, offset @ layer.weight.T + layer.bias


def _concatenate(*affine_maps):
    return tuple(torch.cat(parts, dim=-1) for parts in zip(*affine_maps))


def stick_breaking(v):
    """s_k = v_k prod_(j<k) (1 - v_j) for v (N x K) in [0, 1]: the stick-breaking construction of a
    Dirichlet-distributed representation (uSDN Sec. 3.2; the last piece of the stick is left out)."""
    remaining = torch.cumprod(1 - v, dim=1)
    return v * torch.cat([torch.ones_like(v[:, :1]), remaining[:, :-1]], dim=1)


class DirichletEncoder(nn.Module):
    """S = stick_breaking(u^(1/b)), u = sigmoid(E_u(x)) in (0, 1)^K, b = softplus(E_b(x)) > 0: the
    Kumaraswamy-style draw of the sparse Dirichlet representation (uSDN eqs. 3-5, pbAuto_uSDN.py
    ``construct_vsamples``). With ``projection`` (C x Cm, the SRF), the first layers see x @ projection, and
    the beta branch sees only that."""

    def __init__(self, bands, components, width=WIDTH, projection=None):
        super().__init__()
        self.register_buffer("identity", torch.eye(bands))
        self.register_buffer("projection", self.identity if projection is None else projection)
        seen = self.projection.shape[1]
        self.uniform = DenseStack(seen, bands, [width] * UNIFORM_LAYERS, components)
        self.beta = DenseStack(seen, seen, [width] * BETA_LAYERS, 1)

    def forward(self, x):
        a = (self.projection, torch.zeros(self.projection.shape[1]))
        matrix, offset = _concatenate(self.uniform.affine(a, (self.identity, torch.zeros(len(self.identity)))),
                                      self.beta.affine(a, a))
        logits = torch.addmm(offset, x, matrix)
        b = nn.functional.softplus(logits[:, -1:])
        return stick_breaking(torch.exp(nn.functional.logsigmoid(logits[:, :-1]) / b))  # u^(1/b), u = sigmoid


class SharedDecoder(nn.Module):
    """S D, D = W_1 W_2 (K x K times K x C): the linear decoder both networks share; its rows plus the
    LR-HSI's band means m_Y are the endmembers (uSDN eq. 1)."""

    def __init__(self, components, bands):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(components, components))
        self.w2 = nn.Parameter(torch.empty(components, bands))

    def forward(self, s):
        return s @ self.w1 @ self.w2


class USDN(nn.Module):
    """The two networks: E_h (LR-HSI, through the SRF), E_m (HR-MSI) and the shared decoder D."""

    def __init__(self, bands, msi_bands, srf, components=COMPONENTS, width=WIDTH):
        super().__init__()
        self.hsi_encoder = DirichletEncoder(bands, components, width, projection=srf)
        self.msi_encoder = DirichletEncoder(msi_bands, components, width)
        self.decoder = SharedDecoder(components, bands)

    def initialise(self, generator):
        """TensorFlow's initialisers as the authors' code uses them: Glorot-uniform weights and zero biases
        (``tf.contrib.layers.fully_connected``), the decoder N(0, 0.1) truncated at two deviations."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)
        for weight in (self.decoder.w1, self.decoder.w2):
            nn.init.trunc_normal_(weight, std=0.1, a=-0.2, b=0.2, generator=generator)


# ----------------------------------------------------------------------------- the objectives

def squared_error(estimate, target):
    """The sum over pixels of each band's squared error, averaged over the bands (``reduce_mean(reduce_sum(
    (e - t)^2, 0))``)."""
    return (estimate - target).pow(2).sum(dim=0).mean()


def sparsity(s):
    """The mean entropy -s' log s' of the representation normalised per pixel, s' = s / sum(s): low when
    each pixel uses few components (uSDN eq. 8)."""
    normalised = s / (s.sum(dim=1, keepdim=True) + EPS)
    return -(normalised * torch.log(normalised + EPS)).mean()


def volume(decoder, mean):
    """The mean of (D + m_Y)' (D + m_Y) (C x C): the size of the simplex the endmembers span (uSDN eq. 7)."""
    endmembers = decoder.w1 @ decoder.w2 + mean
    return (endmembers.T @ endmembers).mean()


def angle(a, b):
    """The mean over components of the angle between the columns of a and b (N x K), divided by pi
    (uSDN eq. 10, the representations' angular difference)."""
    cosine = (a * b).sum(dim=0) / (torch.sqrt(a.pow(2).sum(dim=0) * b.pow(2).sum(dim=0)) + EPS)
    return torch.acos(cosine.clamp(-1, 1 - 1e-6)).mean() / 3.1416


def band_angle_and_rmse(estimate, target):
    """The authors' ``evaluation``: (RMSE on the 0-255 scale, mean band angle in degrees) of ``estimate``
    clipped to [0, 1] against ``target`` (both N x C numpy, reflectance in [0, 1]); a band whose angle is
    undefined counts 0."""
    estimate = np.clip(estimate, 0, 1)
    rmse = 255 * np.sqrt(((target - estimate) ** 2).mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (target * estimate).sum(0) / (np.linalg.norm(target, axis=0) * np.linalg.norm(estimate, axis=0))
        degrees = np.nan_to_num(np.arccos(cosine)).mean() * 180.0 / 3.14159
    return float(rmse), float(degrees)


# ----------------------------------------------------------------------------- the training

def fuse(Y, Z, r, psf, srf, components=COMPONENTS, width=WIDTH, tolerance=TOLERANCE, max_steps=MAX_STEPS,
         init_steps=INIT_STEPS, stop="plateau", patience=PATIENCE, reference=None, seed=0, history=None):
    """Fuse an LR-HSI and an HR-MSI with uSDN (Qu et al. 2018).

    Y: h x w x C LR-HSI; Z: H x W x Cm HR-MSI with H = r h, W = r w (rows, columns, bands; reflectance in
    [0, 1]); r: integer scale factor; psf: checked, not used; srf: C x Cm, columns summing to 1 (Z = X @
    srf), given to the networks. components: K (>= 1); width: of the dense layers (>= 1); tolerance: the
    LR-HSI network's target band angle (degrees, > 0); max_steps: all steps together (>= 50); init_steps: of
    the HR-MSI encoder's initialisation (>= 0); stop: "plateau" (blind; ``patience`` checks of 20 steps,
    >= 1) or "reference" (the authors' demo); reference: the H x W x C reference X, needed by
    stop="reference" and otherwise only scored in ``history``; seed: the initial weights; history: a list
    that gets one dict per check: {"stage": "lr_hsi", "step", "degrees", "rmse"} (Y's reconstruction) or
    {"stage": "hr_msi", "step", "msi_degrees", "msi_rmse"} (Z's) with "degrees" and "rmse" of the fused
    image given a reference (degrees of band angle, RMSE on the 0-255 scale). Returns X_hat, H x W x C
    float64.

    Raises DataError for inconsistent shapes, an SRF that does not fit, non-finite values, a parameter out
    of range, or an LR-HSI network that has not reached ``tolerance`` within ``max_steps`` (the authors'
    code has no fused image then; raise ``tolerance`` or ``max_steps``); FloatingPointError if a training
    loss becomes NaN or Inf.
    """
    Y, Z, r, psf, srf = check_inputs(Y, Z, r, psf, srf, "uSDN")
    components = check_integer(components, "components", "uSDN", 1)
    width = check_integer(width, "width", "uSDN", 1)
    max_steps = check_integer(max_steps, "max_steps", "uSDN", LR_CHECK_EVERY, hint=" (the first check's step)")
    init_steps = check_integer(init_steps, "init_steps", "uSDN", 0)
    patience = check_integer(patience, "patience", "uSDN", 1)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not tolerance > 0:
        raise DataError(f"uSDN: tolerance = {tolerance!r} must be a positive number of degrees")
    if stop not in STOPS:
        raise DataError(f"uSDN: stop = {stop!r} must be one of {', '.join(STOPS)}")
    expected = Z.shape[:2] + Y.shape[2:]
    if (stop == "reference" and reference is None) or (reference is not None and np.shape(reference) != expected):
        raise DataError(f"uSDN: the reference X must be {' x '.join(map(str, expected))} (stop='reference' needs "
                        f"it); got {None if reference is None else np.shape(reference)}")
    history = [] if history is None else history
    columns = _Columns(Y, Z, r, srf, reference)
    generator = torch.Generator().manual_seed(seed)
    net = USDN(Y.shape[2], Z.shape[2], columns.srf, components, width)
    net.initialise(generator)
    step = _train_lr_hsi(net, columns, tolerance, max_steps, history)
    _train_hr_msi(net, columns, step, max_steps, init_steps, stop, patience, history)
    with torch.no_grad():
        X = net.decoder(net.msi_encoder(columns.z)) + columns.mean_y
    return X.double().numpy().reshape(Z.shape[:2] + Y.shape[2:])


class _Columns:
    """The pair as the authors' ``readData`` prepares it: N x bands float32 tensors, centred on their band
    means, and the LR copy of Z resampled by the nearest pixel (``multiLR``)."""

    def __init__(self, Y, Z, r, srf, reference):
        def centred(image):
            flat = torch.from_numpy(image.reshape(-1, image.shape[2]).astype(np.float32))
            mean = flat.mean(dim=0, keepdim=True)
            return flat - mean, mean, flat

        self.y, self.mean_y, y_raw = centred(Y)
        self.z, self.mean_z, z_raw = centred(Z)
        self.z_lr = centred(scipy.ndimage.zoom(Z, (1 / r, 1 / r, 1), order=0))[0]
        self.srf = torch.from_numpy(srf.astype(np.float32))
        # What the checks score against, converted once: Y (float32) and Z and the SRF (float64).
        self.y_target, self.z_target, self.srf_float64 = y_raw.numpy(), z_raw.double().numpy(), self.srf.double()
        self.reference = None if reference is None else np.asarray(reference, np.float64).reshape(-1, Y.shape[2])


def _train_lr_hsi(net, columns, tolerance, max_steps, history):
    """Step 1: the LR-HSI network (E_h and D) until its reconstruction of Y is within ``tolerance`` degrees,
    tested every LR_CHECK_EVERY steps; returns the step that reached it."""
    parameters = [*net.decoder.parameters(), *net.hsi_encoder.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=LEARNING_RATE, fused=True)
    for step in range(1, max_steps + 1):
        s = net.hsi_encoder(columns.y)
        loss = (squared_error(net.decoder(s), columns.y) + VOLUME_WEIGHT * volume(net.decoder, columns.mean_y)
                + SPARSITY_WEIGHT * sparsity(s))
        _descend(optimiser, loss)
        if step % LR_CHECK_EVERY == 0:
            with torch.no_grad():
                estimate = net.decoder(net.hsi_encoder(columns.y)) + columns.mean_y
            rmse, degrees = band_angle_and_rmse(estimate.numpy(), columns.y_target)
            history.append({"stage": "lr_hsi", "step": step, "degrees": degrees, "rmse": rmse})
            if degrees <= tolerance:
                return step
    raise DataError(f"uSDN: the LR-HSI network reconstructs Y within {history[-1]['degrees']:.2f} degrees after "
                    f"{max_steps} steps, not the {tolerance} its HR stage starts at; raise tolerance or max_steps")


def _train_hr_msi(net, columns, step, max_steps, init_steps, stop, patience, history):
    """Steps 2 and 3: the HR-MSI encoder, the decoder fixed, from the step the LR stage ended (the authors'
    code counts both stages' steps in one loop) until the stopping rule (module docstring) or ``max_steps``."""
    net.decoder.requires_grad_(False)
    net.hsi_encoder.requires_grad_(False)
    encoder = net.msi_encoder
    with torch.no_grad():
        target = net.hsi_encoder(columns.y)
    _fit_representation(encoder, columns.z_lr, target, init_steps)
    fit, align = (torch.optim.Adam(encoder.parameters(), lr=LEARNING_RATE, fused=True) for _ in range(2))
    previous = (50.0, 50.0)  # the code's sam_total[0], rmse_total[0]
    best = (np.inf, None, step)  # plateau: the best MSI RMSE, the encoder's state and step there
    for step in range(step, max_steps + 1):
        s = encoder(columns.z)
        fused = net.decoder(s) + columns.mean_y
        loss = squared_error(fused @ columns.srf - columns.mean_z, columns.z) + SPARSITY_WEIGHT * sparsity(s)
        _descend(fit, loss)
        if step % HR_CHECK_EVERY:
            continue
        _descend(align, angle(encoder(columns.z_lr), target))
        check = _check(net, columns, step)
        history.append(check)
        if stop == "reference":
            if previous[0] / check["degrees"] < WORSE and previous[1] / check["rmse"] < WORSE:
                return
            previous = (check["degrees"], check["rmse"])
        elif check["msi_rmse"] < best[0]:
            best = (check["msi_rmse"], copy.deepcopy(encoder.state_dict()), step)
        elif step - best[2] >= patience * HR_CHECK_EVERY:
            break
    if stop == "plateau" and best[1] is not None:
        encoder.load_state_dict(best[1])


def _check(net, columns, step):
    """The scores of one check: the HR-MSI's reconstruction (msi_rmse, msi_degrees; ``band_angle_and_rmse``)
    and, given a reference, the fused image's (rmse, degrees)."""
    with torch.no_grad():
        fused = (net.decoder(net.msi_encoder(columns.z)) + columns.mean_y).double()
    check = {"stage": "hr_msi", "step": step}
    check["msi_rmse"], check["msi_degrees"] = band_angle_and_rmse((fused @ columns.srf_float64).numpy(),
                                                                  columns.z_target)
    if columns.reference is not None:
        check["rmse"], check["degrees"] = band_angle_and_rmse(fused.numpy(), columns.reference)
    return check


def _fit_representation(encoder, z_lr, target, steps):
    """Step 2: E_m on the LR copy of Z fitted to the LR-HSI's representation S_h (mean squared error), for
    ``steps`` steps or until the error is below INIT_LOSS_STOP."""
    optimiser = torch.optim.Adam(encoder.parameters(), lr=LEARNING_RATE, fused=True)
    for _ in range(steps):
        loss = (encoder(z_lr) - target).pow(2).mean()
        _descend(optimiser, loss)
        if loss.item() < INIT_LOSS_STOP:
            return


def _descend(optimiser, loss):
    """One Adam step on ``loss``; raises FloatingPointError if it is NaN or Inf."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"uSDN: a training loss became {loss.item()}; try another seed")
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
