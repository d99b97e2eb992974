function [R, err] = estR(HS, MS, varargin)
% ESTR  The true SRF in the place of the HSMSFusionToolbox's estimator (written for this project).
%
% The toolbox's estR(HS, MS) fits the relative spectral response and an offset per MSI band to the
% data (quadprog). The project gives every baseline the true SRF, so this returns it in the
% estimator's layout: R = [srf', 0] (Cm x (C + 1), last column the offset), err = 0 per MSI band.
  global OCTAVE_REFERENCE
  srf = OCTAVE_REFERENCE.srf;
  if size(srf, 1) ~= size(HS, 3) || size(srf, 2) ~= size(MS, 3)
    error('estR (true SRF): the SRF is %d x %d, the images have %d and %d bands', ...
          size(srf, 1), size(srf, 2), size(HS, 3), size(MS, 3));
  end
  R = [srf', zeros(size(srf, 2), 1)];
  err = zeros(size(srf, 2), 1);
end
