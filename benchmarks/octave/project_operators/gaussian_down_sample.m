function out = gaussian_down_sample(data, w, varargin)
% GAUSSIAN_DOWN_SAMPLE  The project's block degradation by the true PSF in the place of the
% HSMSFusionToolbox's fixed Gaussian downsampler (project mode only). w must be the scale factor.
  global OCTAVE_REFERENCE
  if w ~= OCTAVE_REFERENCE.r
    error('gaussian_down_sample (project operators): factor %d, but the case has r = %d', w, OCTAVE_REFERENCE.r);
  end
  out = project_blur_decimate(data, OCTAVE_REFERENCE.psf, w);
end
