# An overlay of a vendored dependency, as site profiles write them.
include_controls 'linux-baseline' do
  skip_control 'os-14'
  control 'os-11' do
    impact 0.0
  end
end
