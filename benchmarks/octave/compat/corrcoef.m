function R = corrcoef(x, y)
% CORRCOEF  MATLAB's corrcoef for one matrix or two vectors (written for this project): the
% correlation matrix of the columns of A = x or A = [x(:) y(:)]. Octave's own corrcoef calls its own
% cov semantics, which compat/cov.m replaces by MATLAB's.
  if nargin == 2
    C = cov(x, y);
  else
    C = cov(x);
  end
  d = sqrt(diag(C));
  R = C ./ (d * d');
end
