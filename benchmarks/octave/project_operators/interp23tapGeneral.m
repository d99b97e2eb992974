function out = interp23tapGeneral(img, ratio, varargin)
% INTERP23TAPGENERAL  The project's bicubic upsampling in the place of the pansharpening toolbox's
% 44-tap polynomial interpolator (project mode only); the sampling phase argument is not used: the
% project's pixel centres are aligned (operators.bicubic_matrix).
  out = project_bicubic(img, ratio);
end
