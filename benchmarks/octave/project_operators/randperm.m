function p = randperm(n, k)
% RANDPERM  The identity order in the place of a random permutation (project mode only).
%
% CSTF's K-SVD (trainD.m, optimize_atom) scans the unused training signals in random order for the
% worst-represented one, so among signals of equal error (the embedded cube has many identical
% training signals) the one taken is random; the authors' own commented alternative is the order
% 1:n, which the Python version follows (the first of equal maxima).
  if nargin < 2
    k = n;
  end
  p = 1:k;
end
