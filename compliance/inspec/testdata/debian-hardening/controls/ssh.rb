# Controls in the style of dev-sec's ssh-baseline: a file-level guard, inputs, sshd_config.
sshd_ciphers = input('sshd_ciphers')

only_if('sshd is not installed') do
  command('sshd').exist?
end

control 'sshd-01' do
  impact 1.0
  title 'Server: Check owner and permissions for /etc/ssh'
  describe file('/etc/ssh') do
    it { should be_directory }
    it { should be_owned_by 'root' }
    it { should_not be_writable.by('others') }
  end
end

control 'sshd-02' do
  impact 1.0
  title 'Server: Check owner and permissions for sshd_config'
  describe file('/etc/ssh/sshd_config') do
    it { should be_file }
    it { should be_owned_by 'root' }
    it { should_not be_readable.by('others') }
  end
end

control 'sshd-05' do
  impact 1.0
  title 'Server: Do not permit root-based login with password.'
  describe sshd_config do
    its('PermitRootLogin') { should match(/no|without-password|prohibit-password/) }
  end
end

control 'sshd-11' do
  impact 1.0
  title 'Server: Ciphers, X11 forwarding and PAM'
  describe sshd_config do
    its('Ciphers') { should cmp sshd_ciphers }
    its('X11Forwarding') { should eq 'no' }
    its('UsePAM') { should eq 'yes' }
  end
end

control 'sshd-pkg' do
  impact 0.5
  title 'Server: openssh-server is a supported version'
  describe package('openssh-server') do
    it { should be_installed }
    its('version') { should cmp >= '1:8.4' }
  end
  describe.one do
    describe sshd_config do
      its('AllowTcpForwarding') { should eq 'no' }
    end
    describe sshd_config do
      its('Subsystem') { should match %r{sftp\s+/usr/lib/openssh/sftp-server} }
    end
  end
end
