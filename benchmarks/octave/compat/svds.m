function [U, S, V] = svds(A, k)
% SVDS  The k largest singular triplets through the full SVD (written for this project).
%
% Octave 7's svds (an eigs-based iteration) returns more than k vectors, or fails to converge, on the
% rank-deficient matrices the authors' code hands it here (Gram matrices of images of a dozen distinct
% spectra, asked for up to 60 vectors). The matrices are small, so the exact SVD is affordable; the
% singular values come in descending order, as MATLAB's svds returns them. With one output, the
% vector of the k singular values.
  [U, S, V] = svd(full(A), 'econ');
  k = min(k, size(S, 1));
  U = U(:, 1:k);
  S = S(1:k, 1:k);
  V = V(:, 1:k);
  if nargout <= 1
    U = diag(S);
  end
end
