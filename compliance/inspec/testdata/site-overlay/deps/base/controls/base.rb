control 'base-01' do
  title 'passwd is owned by root'
  impact 0.7
  tag severity: 'high'
  describe file('/etc/passwd') do
    it { should be_owned_by 'root' }
  end
end

control 'base-02' do
  title 'shadow is not world readable'
  impact 0.7
  describe file('/etc/shadow') do
    it { should_not be_readable.by('others') }
  end
end

control 'base-03' do
  impact 0.5
  describe file('/etc/nothing') do
    it { should exist }
  end
end

control 'base-04' do
  title 'a file the overlay replaces'
  describe file('/etc/site.conf') do
    it { should exist }
  end
end

control 'base-05' do
  title 'the configuration exists'
  describe file(input('conf_path')) do
    it { should exist }
  end
end
