function M = sisal(Y, p, varargin)
% SISAL  The Python CSU's initial endmembers in the place of SISAL (project mode, CSU only).
%
% baselines/csu.py starts from VCA's endmembers (baselines/unmixing.py), handed over in the case file as
% endmembers_csu (C x p); SupResPALM.m's call sisal(hyper, p, ...) returns them.
  global OCTAVE_REFERENCE
  M = OCTAVE_REFERENCE.endmembers;
  if size(M, 2) ~= p
    error('sisal (project operators): %d endmembers were handed over, %d asked for', size(M, 2), p);
  end
end
