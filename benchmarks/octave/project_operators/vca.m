function [U, indices, projected] = vca(data, varargin)
% VCA  The endmembers the Python side starts from, in the place of the authors' random VCA (project
% mode only), so that both sides start from the same matrix: see project_endmembers.m. HySure's
% VCA(R, 'Endmembers', p, ...) is answered by uppercase/VCA.m (a separate folder, so that the two
% names do not collide on a case-insensitive file system; either file takes either call form).
  [U, indices] = project_endmembers(data, varargin);
  projected = [];
end
