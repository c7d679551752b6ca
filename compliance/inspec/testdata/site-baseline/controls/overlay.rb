include_controls 'base' do
  skip_control 'base-9'
  control 'base-1' do
    impact 0.0
  end
end
