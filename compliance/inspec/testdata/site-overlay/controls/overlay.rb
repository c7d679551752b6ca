include_controls 'base' do
  skip_control 'base-03'
  control 'base-02' do
    impact 0.3
  end
  control 'base-04' do
    title 'site config exists'
    describe file('/etc/login.defs') do
      it { should exist }
    end
  end
end

require_controls 'other' do
  control 'o-1'
end

include_controls 'remote' do
  control 'r-1' do
    impact 1.0
  end
end
