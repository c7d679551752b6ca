# Plain describe blocks, tags of every type, descs with labels.
control 'site-01' do
  impact 0.7
  title 'passwd is owned by root'
  desc 'Accounts must not be writable by others.'
  desc 'check', 'ls -l /etc/passwd'
  tag severity: 'high', nist: ['AC-6'], cis: { level: 1 }
  tag :container
  ref 'Site policy', url: 'https://example.invalid/policy'
  describe file('/etc/passwd') do
    it { should be_owned_by 'root' }
    its('mode') { should cmp '0644' }
  end
end

control 'site-02' do
  impact 'medium'
  only_if('sshd is installed') { command('sshd').exist? }
  describe sshd_config do
    its('PermitRootLogin') { should eq 'no' }
  end
end

input('login_users').each do |u|
  control "site-user-#{u}" do
    describe user(u) do
      it { should exist }
    end
  end
end

control 'site-03' do
  describe command('systemctl is-active cron') do
    its('stdout') { should match /active/ }
  end
end

control 'site-04' do
  describe passwd.where { uid.to_i.zero? } do
    its('users') { should cmp ['root'] }
  end
  describe.one do
    describe package('openssh-server') do
      it { should_not be_installed }
    end
    describe ssh_policy do
      its('ciphers') { should include 'aes256-gcm@openssh.com' }
    end
  end
end
