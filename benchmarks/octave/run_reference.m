function run_reference(case_file, out_file, method, mode, source_dir)
% RUN_REFERENCE  Fuse the shared case with one authors' MATLAB implementation under GNU Octave.
%
%   run_reference(case_file, out_file, method, mode, source_dir)
%
% Written for this project (benchmarks/octave_reference.py calls it; see that file for what to
% install and where the authors' code comes from). It only loads the case, puts the authors' code on
% the path and calls their function with the parameters of their demo scripts; none of their code is
% copied here.
%
%   case_file  : .mat written by octave_reference.py: Y (h x w x C LR-HSI), Z (H x W x Cm HR-MSI),
%                psf (r x r convolution kernel, sum 1), srf (C x Cm, columns sum 1), r (scale factor),
%                X (reference, only printed by CSTF's own code), endmembers_<method> (C x K initial
%                endmembers for the 'project' mode)
%   out_file   : .mat to write: Xhat (H x W x C), seconds, octave_version, endmembers (CNMF: the
%                number M its code chose; NaN for the other methods)
%   method     : 'gsa' | 'mtf_glp_hs' | 'cnmf' | 'hysure' | 'cstf' | 'stereo' | 'blind_stereo' | 'csu' |
%                'gsomp'
%   mode       : 'authors' - the authors' functions with the true SRF and PSF wherever their interface
%                takes them (the SRF estimator estR of the HSMSFusionToolbox is replaced by the true
%                SRF), everything else as published: their interpolators and degradations, their
%                random initialisations (seeded here);
%                'project' - in addition, the spatial operators the project replaced (imresize,
%                gaussian_down_sample, interp23tapGeneral) are the project's (project_operators/),
%                the random VCA initialisation returns the endmembers the Python side uses, and
%                randperm (K-SVD's scan for a replacement atom) is the identity order, so that any
%                remaining difference is in the algorithm itself. STEREO and Blind-STEREO run in this
%                mode only: their demos initialise with Tensorlab's cpd, which is not available, so
%                their STEREO.m / Blind_STEREO.m start from the Python side's TenRec factors
%                (stereo_* in the case file) with its separable operators P1, P2. CSU's project mode
%                also replaces SISAL, SUNSAL and the box degradation hyperSpatialDown by the Python
%                side's start and the true PSF (project_operators/csu/); G-SOMP+ runs in this mode only,
%                with the Python side's dictionary (its authors learn theirs with SPAMS)
%   source_dir : root of the authors' code for this method (see octave_reference.py)

  here = fileparts(mfilename('fullpath'));
  pkg load image
  pkg load signal
  pkg load statistics
  data = load(case_file);
  global OCTAVE_REFERENCE
  OCTAVE_REFERENCE = struct('psf', data.psf, 'r', double(data.r), 'srf', data.srf, 'endmembers', [], ...
                            'abundances', []);
  if isfield(data, ['endmembers_' method])
    OCTAVE_REFERENCE.endmembers = data.(['endmembers_' method]);
  end
  if isfield(data, ['abundances_' method])
    OCTAVE_REFERENCE.abundances = data.(['abundances_' method]);
  end
  % Their random initialisations (VCA, K-SVD's atom replacement) draw from Octave's generators.
  rand('seed', 0); randn('seed', 0); rand('state', 0); randn('state', 0);

  Y = double(data.Y); Z = double(data.Z); r = double(data.r);
  switch method
    case 'gsa'
      addpath(fullfile(source_dir, 'methods', 'GSA'));
    case 'mtf_glp_hs'
      addpath(fullfile(source_dir, 'methods', 'GLP'), fullfile(source_dir, 'auxiliary', 'globals'));
    case 'cnmf'
      addpath(fullfile(source_dir, 'methods', 'CNMF'));
    case 'hysure'
      addpath(fullfile(source_dir, 'src'), fullfile(source_dir, 'src', 'utils'));
    case 'cstf'
      addpath(source_dir, fullfile(source_dir, 'functions'), fullfile(source_dir, 'ImprovedDL'), ...
              fullfile(source_dir, 'tensor_toolbox_2.6'), fullfile(source_dir, 'sisal'));
    case {'stereo', 'blind_stereo'}
      addpath(fullfile(source_dir, 'algorithms'), fullfile(source_dir, 'functions'));
    case 'csu'
      addpath(source_dir, fullfile(source_dir, 'include'), fullfile(source_dir, 'reproject_simplex'), ...
              fullfile(source_dir, 'sisal'));
    case 'gsomp'
      addpath(fullfile(source_dir, 'methods', 'GSOMP'));
    otherwise
      error('run_reference: unknown method %s', method);
  end
  % Added last, so these shadow the authors' functions of the same name (compat: MATLAB semantics
  % that Octave 7 lacks).
  addpath(fullfile(here, 'compat'), fullfile(here, 'true_srf'));
  if strcmp(mode, 'project')
    addpath(fullfile(here, 'project_operators'), fullfile(here, 'project_operators', 'uppercase'));
    if strcmp(method, 'csu')
      addpath(fullfile(here, 'project_operators', 'csu'));
    end
  elseif ~strcmp(mode, 'authors')
    error('run_reference: unknown mode %s', mode);
  end

  endmembers = NaN;
  tic;
  switch method
    case 'gsa'
      Xhat = GSA_wrapper(Y, Z);
    case 'mtf_glp_hs'
      Xhat = MTF_GLP_wrapper(Y, Z);
    case 'cnmf'
      [Xhat, W_hyper] = CNMF_fusion(Y, Z);
      endmembers = size(W_hyper, 2);
    case 'hysure'
      % demo_pavia_hs_ms.m: p = 10, VCA basis, lambda_phi = 5e-4, lambda_m = 1 (mu = 0.05 and 200
      % iterations are fixed in data_fusion.m).
      Xhat = data_fusion(Y, Z, r, data.srf', hysure_kernel(data.psf, size(Z, 1), size(Z, 2)), ...
                         10, 'VCA', 5e-4, 1);
    case 'cstf'
      % demo.m: par.lambda = 1e-5, 9 spectral atoms, 240 spatial atoms for a 256 x 256 image (here
      % capped at the image's size, as the Python version does).
      par = struct('W', min(240, size(Z, 1)), 'H', min(240, size(Z, 2)), 'S', min(9, size(Y, 3)), ...
                   'lambda', 1e-5);
      [bw, bh] = cstf_kernels(data.psf, size(Z, 1), size(Z, 2));
      Xhat = CSTF_FUS(Y, Z, data.srf', bw, bh, r, par, 1, double(data.X));
    case 'stereo'
      % demo_for_STEREO.m: lamda = 1, s_iter = 2 (one iteration of STEREO.m's loop iter = 2:MAXIT).
      [A, B, C] = STEREO(Y, Z, data.stereo_P1, data.stereo_P2, sparse(data.srf'), 2, 1, data.stereo_A, ...
                         data.stereo_B, data.stereo_C, data.stereo_C_tilde);
      Xhat = cpd_tensor(A, B, C);
    case 'blind_stereo'
      % Demo_for_Blind_STEREO.m: lamdab = 1, bs_iter = 4 (three iterations).
      [A, B, C] = Blind_STEREO(Y, Z, sparse(data.srf'), 4, data.stereo_A, data.stereo_B, data.stereo_A_lr, ...
                               data.stereo_B_lr, data.stereo_C_tilde, 1);
      Xhat = cpd_tensor(A, B, C);
    case 'csu'
      % demoSupResPALM.m: p = 10 endmembers; the reference X is only printed (RMSE per iteration).
      [E, A] = SupResPALM(Y, Z, double(data.X), data.srf', 10, size(Z, 1));
      Xhat = hyperConvert3d(E * A, size(Z, 1), size(Z, 2));
    case 'gsomp'
      % superResolution.m's L = 20, gamma = 0.99, with param.spams = 0: superResolution2.m then loads its
      % dictionary Phi from Phi.mat in the working folder, here the Python side's (gsomp_dictionary);
      % gsomp_patch is the patch side of this comparison (the demo's 8 does not divide the case's 60).
      Phi = data.gsomp_dictionary;
      folder = tempname();
      mkdir(folder);
      save('-v7', fullfile(folder, 'Phi.mat'), 'Phi');
      previous = cd(folder);
      param = struct('spams', 0, 'L', 20, 'gamma', 0.99, 'k', size(Phi, 2), 'eta', 10e-9);
      Xhat = superResolution2(param, Y, Z, data.srf', double(data.gsomp_patch));
      cd(previous);
  end
  seconds = toc;
  octave_version = version();
  save('-v7', out_file, 'Xhat', 'seconds', 'octave_version', 'endmembers');
end


function B = hysure_kernel(psf, rows, cols)
% The H x W circular blur whose output, sampled at data_fusion.m's fixed phase (shift = 1: HR rows
% and columns 1 + r a, 0-based), is the project's block degradation: with 0-based indices,
% out(1 + r a) = sum_ij psf(r-1-i, r-1-j) X(r a + i, r b + j), i.e. B(1 - i, 1 - j) = psf(r-1-i, r-1-j)
% (indices modulo H, W).
  r = size(psf, 1);
  B = zeros(rows, cols);
  for i = 0:r - 1
    for j = 0:r - 1
      B(mod(1 - i, rows) + 1, mod(1 - j, cols) + 1) = psf(r - i, r - j);
    end
  end
end


function [bw, bh] = cstf_kernels(psf, rows, cols)
% DFTs of the row and column blurs whose outputs, sampled at CSTF_FUS.m's s0 = 1 (HR rows 0, r, 2 r,
% ... 0-based), are the project's separable block degradation: the flipped PSF is outer(c, v) with
% sum(v) = 1, and out(r a) = sum_k c(k) X(r a + k) needs the circular kernel b(-k mod H) = c(k).
  r = size(psf, 1);
  flipped = rot90(psf, 2);
  c = sum(flipped, 2);
  v = sum(flipped, 1)';
  b_rows = zeros(rows, 1);
  b_cols = zeros(cols, 1);
  b_rows(mod(-(0:r - 1), rows) + 1) = c;
  b_cols(mod(-(0:r - 1), cols) + 1) = v;
  bw = fft(b_rows);
  bh = fft(b_cols);
end


function X = cpd_tensor(A, B, C)
% The I x J x K tensor [[A, B, C]] (the demos' khatri_rao(C, B) * A', folded back).
  X = zeros(size(A, 1), size(B, 1), size(C, 1));
  for k = 1:size(C, 1)
    X(:, :, k) = A * diag(C(k, :)) * B';
  end
end
