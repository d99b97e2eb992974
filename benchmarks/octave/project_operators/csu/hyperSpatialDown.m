function [S, St] = hyperSpatialDown(h, w, dsf)
% HYPERSPATIALDOWN  The project's PSF degradation as SupResPALM.m's matrix S (project mode, CSU only).
%
% The authors' hyperSpatialDown.m averages r x r boxes; here S (h w x h w / r^2, sparse, pixels in
% column-major order) weights each box by the flipped true PSF, so that A * S is the project's
% block degradation of the abundance maps (project_blur_decimate). St is S' (unused by SupResPALM.m).
  global OCTAVE_REFERENCE
  r = OCTAVE_REFERENCE.r;
  if dsf ~= r
    error('hyperSpatialDown (project operators): a factor of %g, the case has r = %d', dsf, r);
  end
  flipped = rot90(OCTAVE_REFERENCE.psf, 2);
  hl = h / r;
  wl = w / r;
  [a, b, i, j] = ndgrid(0:hl - 1, 0:wl - 1, 0:r - 1, 0:r - 1);
  high = (a * r + i) + (b * r + j) * h + 1;
  low = a + b * hl + 1;
  weights = flipped(sub2ind([r r], i + 1, j + 1));
  S = sparse(high(:), low(:), weights(:), h * w, hl * wl);
  St = S';
end
