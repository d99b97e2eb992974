function out = project_bicubic(img, r)
% The project's bicubic upsampling by the integer factor r (baselines/operators.py bicubic_upsample,
% = PyTorch interpolate(mode='bicubic', align_corners=False)): Keys' kernel with a = -0.75, output
% sample d at input coordinate (d + 0.5) / r - 0.5, border indices clamped. img: h x w x K.
  rows = interpolation_matrix(size(img, 1), r);
  cols = interpolation_matrix(size(img, 2), r);
  out = zeros(size(img, 1) * r, size(img, 2) * r, size(img, 3));
  for k = 1:size(img, 3)
    out(:, :, k) = rows * img(:, :, k) * cols';
  end
end


function M = interpolation_matrix(n, r)
  a = -0.75;
  src = ((0:n * r - 1)' + 0.5) / r - 0.5;
  base = floor(src);
  t = src - base;
  near = @(x) ((a + 2) * x - (a + 3)) .* x .* x + 1;
  far = @(x) ((a * x - 5 * a) .* x + 8 * a) .* x - 4 * a;
  weights = [far(t + 1), near(t), near(1 - t), far(2 - t)];
  taps = min(max(base + (-1:2), 0), n - 1) + 1;
  M = zeros(n * r, n);
  for k = 1:4
    M = M + sparse((1:n * r)', taps(:, k), weights(:, k), n * r, n);
  end
  M = full(M);
end
