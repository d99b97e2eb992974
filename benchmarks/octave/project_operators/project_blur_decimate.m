function out = project_blur_decimate(img, psf, r)
% The project's spatial degradation (baselines/operators.py blur_decimate; data_loader.spatial_degrade):
% each disjoint r x r block of every band weighted by the flipped r x r convolution kernel psf and
% summed. img: (r h) x (r w) x K; out: h x w x K.
  h = floor(size(img, 1) / r);
  w = floor(size(img, 2) / r);
  out = zeros(h, w, size(img, 3));
  flipped = rot90(psf, 2);
  for i = 1:r
    for j = 1:r
      out = out + flipped(i, j) * img(i:r:r * h, j:r:r * w, :);
    end
  end
end
