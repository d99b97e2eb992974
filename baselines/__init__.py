"""The comparison methods of the papers' tables (classical HSI-MSI fusion, and uSDN, a network trained on
the pair), one module per method, all with the signature

    fuse(Y, Z, r, psf, srf, **params) -> X_hat

Y: LR-HSI h x w x C, Z: HR-MSI H x W x Cm (H = r h), psf: r x r convolution kernel (sum 1), srf: C x Cm
(columns sum 1), X_hat: H x W x C float64; the degradation model is data_loader's (Wald's protocol).
They are given the true PSF and SRF, as the papers' comparisons did (Blind-STEREO, G-SOMP+ and uSDN use only
the SRF).
``BASELINES`` maps each name to its module path (and function, when it is not ``fuse``); ``baseline(name)``
and ``fuse_with(name, ...)`` import the module only when it is used.
"""
import importlib

# In the order of the UDALN paper's Tables II-III (HySure, FUSE, G-SOMP+, CSU, CNMF, STEREO, CSTF, uSDN), after the
# floor and the two pansharpening-style methods it does not list; Blind-STEREO beside STEREO.
BASELINES = {
    "bicubic": "baselines.bicubic",            # the floor
    "gsa": "baselines.gsa",                    # component substitution (Aiazzi et al. 2007)
    "mtf_glp_hs": "baselines.mtf_glp_hs",      # multiresolution analysis (Selva et al. 2015)
    "hysure": "baselines.hysure",              # subspace + vector TV (Simoes et al. 2015)
    "fuse": "baselines.fuse_sylvester",        # Sylvester closed form (Wei et al. 2015)
    "gsomp": "baselines.gsomp",                # G-SOMP+, sparse spatio-spectral representation (Akhtar et al. 2014)
    "csu": "baselines.csu",                    # coupled spectral unmixing (Lanaras et al. 2015)
    "cnmf": "baselines.cnmf",                  # coupled NMF (Yokoya et al. 2012)
    "stereo": "baselines.stereo",              # coupled CPD (Kanatsoulis et al. 2018)
    "blind_stereo": "baselines.stereo:fuse_blind",  # the same, blind to the PSF
    "cstf": "baselines.cstf",                  # coupled sparse tensor factorisation (Li et al. 2018)
    "usdn": "baselines.usdn",                  # unsupervised sparse Dirichlet-net (Qu et al. 2018)
}


def baseline(name):
    """The ``fuse`` function of the baseline ``name`` (a key of BASELINES: "module" or "module:function");
    raises KeyError listing the known names."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    module, _, function = BASELINES[name].partition(":")
    return getattr(importlib.import_module(module), function or "fuse")


def fuse_with(name, Y, Z, r, psf, srf, **params):
    """Fuse with the baseline ``name`` (a key of BASELINES); raises KeyError listing the known names."""
    return baseline(name)(Y, Z, r, psf, srf, **params)
