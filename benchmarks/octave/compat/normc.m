function Y = normc(X)
% NORMC  Columns scaled to unit Euclidean length (MATLAB's Deep Learning Toolbox function, which Octave's
% core lacks; G-SOMP+'s GSOMP_NN calls it). A zero column stays zero.
  norms = sqrt(sum(X .^ 2, 1));
  norms(norms == 0) = 1;
  Y = X ./ norms;
end
