function y = ifft(x, varargin)
% IFFT  Octave's ifft, real when MATLAB's would be (written for this project).
%
% MATLAB's ifft returns a real array when every transformed vector is exactly conjugate symmetric
% (the transform of a real signal); Octave 7 returns a complex one with zero or rounding-level
% imaginary parts, which the authors' CSTF code then fails on (im2uint8 of a complex cube). For the
% one-argument call on a matrix (transform along the columns), as the authors make it, exact
% conjugate symmetry of every column gives the real part, as in MATLAB.
  y = builtin('ifft', x, varargin{:});
  if isempty(varargin) && ~isreal(y) && ismatrix(x) && size(x, 1) > 1
    n = size(x, 1);
    mirrored = x(mod(-(0:n - 1), n) + 1, :);
    if isequal(x, conj(mirrored))
      y = real(y);
    end
  end
end
