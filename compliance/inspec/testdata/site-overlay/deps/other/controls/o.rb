control 'o-1' do
  describe file('/etc/login.defs') do
    it { should exist }
  end
end
control 'o-2' do
  describe file('/etc/nothing') do
    it { should exist }
  end
end
