function B = ipermute(A, order)
% IPERMUTE  The inverse permutation through permute (written for this project).
%
% MATLAB's ipermute calls permute, so a class that defines permute (the Tensor Toolbox's @tensor,
% which CSTF uses) gets its own method; Octave 7's built-in ipermute does not dispatch and fails on
% such objects. This one calls permute with the inverse order.
  inverse(order) = 1:numel(order);
  B = permute(A, inverse);
end
