function out = imresize(img, scale, varargin)
% IMRESIZE  The project's operators in the place of the image package's imresize (project mode only).
%
% The authors' code calls imresize to bring an image to the other sensor's grid; this project's
% model replaces both directions: reducing by the scale factor r is the block degradation by the
% true PSF (project_blur_decimate), enlarging by r is the project's bicubic (project_bicubic). The
% method argument ('bilinear', 'bicubic', ...) is ignored; any other change of size is an error.
  global OCTAVE_REFERENCE
  r = OCTAVE_REFERENCE.r;
  if isscalar(scale)
    target = round(size(img, 1) * scale);
  else
    target = scale(1);
  end
  if target * r == size(img, 1)
    out = project_blur_decimate(img, OCTAVE_REFERENCE.psf, r);
  elseif target == size(img, 1) * r
    out = project_bicubic(img, r);
  else
    error('imresize (project operators): %d rows to %d is neither a reduction nor an enlargement by r = %d', ...
          size(img, 1), target, r);
  end
end
