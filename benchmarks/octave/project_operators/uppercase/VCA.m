function [U, indices, projected] = VCA(data, varargin)
% VCA  HySure's VCA(R, 'Endmembers', p, ...) in project mode: the endmembers the Python side starts
% from (project_endmembers.m); also takes vca's call form vca(R, p).
  [U, indices] = project_endmembers(data, varargin);
  projected = [];
end
