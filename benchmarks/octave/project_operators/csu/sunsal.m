function X = sunsal(M, Y, varargin)
% SUNSAL  The Python CSU's initial LR abundances in the place of SUNSAL (project mode, CSU only).
%
% baselines/csu.py starts from the fully constrained least-squares abundances of the LR-HSI
% (baselines/unmixing.py, fcls), handed over in the case file as abundances_csu (h x w x p maps);
% returned in SupResPALM.m's 2-D layout (p x h w, pixels in column-major order).
  global OCTAVE_REFERENCE
  X = hyperConvert2d(OCTAVE_REFERENCE.abundances);
end
