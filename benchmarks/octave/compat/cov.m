function C = cov(x, y)
% COV  MATLAB's cov for the calls the authors' code makes (written for this project).
%
% GNU Octave before version 8 reads cov(x, y) as the cross-covariance of x and y (a scalar for two
% vectors); MATLAB, for which the authors wrote their code, returns the 2 x 2 covariance matrix of
% [x(:) y(:)] and the code reads its element (1, 2). cov(A) is the covariance matrix of A's columns
% (a vector: its variance). Normalised by n - 1, as both.
  if nargin == 2
    A = [x(:), y(:)];
  elseif isvector(x)
    A = x(:);
  else
    A = x;
  end
  centred = A - mean(A, 1);
  C = (centred' * centred) / (size(A, 1) - 1);
end
