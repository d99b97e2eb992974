function [U, indices] = project_endmembers(data, args)
% The first p columns of the case file's endmembers_<method> (C x K), for the two call forms of the
% authors' VCA: vca(R, p) (CNMF, CSTF) and VCA(R, 'Endmembers', p, ...) (HySure). indices is empty
% (no pixel indices are known).
  global OCTAVE_REFERENCE
  if ischar(args{1})
    p = args{find(strcmpi(args(1:2:end), 'Endmembers')) * 2};
  else
    p = args{1};
  end
  E = OCTAVE_REFERENCE.endmembers;
  if isempty(E) || size(E, 2) < p || size(E, 1) ~= size(data, 1)
    error('vca (project operators): the case file holds %d x %d endmembers; %d of %d bands are needed', ...
          size(E, 1), size(E, 2), p, size(data, 1));
  end
  U = E(:, 1:p);
  indices = [];
end
