# Controls in the style of dev-sec's linux-baseline: plain describes, guards, inputs, loops over arrays and
# filter tables.
login_defs_umask = input('login_defs_umask')
container_execution = begin
  virtualization.role == 'guest' && virtualization.system =~ /^(lxc|docker)$/
rescue NoMethodError
  false
end

control 'os-01' do
  impact 1.0
  title 'Trusted hosts login'
  desc 'hosts.equiv lets remote hosts log in without a password.'
  tag 'host', 'container'
  describe file('/etc/hosts.equiv') do
    it { should_not exist }
  end
end

control 'os-02' do
  impact 1.0
  title 'Check owner and permissions for /etc/shadow'
  only_if('the image has no /etc/shadow') { file('/etc/shadow').exist? }
  describe file('/etc/shadow') do
    it { should be_file }
    it { should be_owned_by 'root' }
    its('group') { should eq 'shadow' }
    it { should_not be_executable }
    it { should_not be_readable.by('other') }
    its('mode') { should cmp '0640' }
  end
end

control 'os-03' do
  impact 1.0
  title 'Check owner and permissions for /etc/passwd'
  describe file('/etc/passwd') do
    it { should exist }
    it { should be_owned_by 'root' }
    its('group') { should eq 'root' }
    it { should be_writable.by('owner') }
    it { should_not be_writable.by('group') }
    it { should_not be_writable.by('others') }
    it { should be_readable.by('others') }
  end
end

control 'os-05' do
  impact 1.0
  title 'Check login.defs'
  only_if('login.defs is not installed') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('ENV_SUPATH') { should include('/sbin') }
    its('UMASK') { should include(login_defs_umask) }
    its('PASS_MAX_DAYS') { should cmp <= input('pass_max_days') }
    its('PASS_MIN_DAYS') { should cmp >= 1 }
    its('PASS_WARN_AGE') { should cmp 7 }
  end
end

control 'os-06' do
  impact 0.5
  title 'Check for SUID/ SGID blocklist'
  describe suid_check(['/usr/bin/at', '/usr/bin/wall']) do
    its('permissions') { should be_empty }
  end
end

control 'os-07' do
  impact 0.7
  title 'System files are owned by root and not world-writable'
  input('system_files').each do |f|
    describe file(f) do
      it { should be_owned_by 'root' }
      it { should_not be_writable.by('others') }
    end
  end
end

control 'os-08' do
  impact 1.0
  title 'Only root has uid 0, and no account has a usable password'
  describe passwd.where { uid == '0' }.users do
    it { should eq ['root'] }
  end
  describe shadow.where { password =~ /^[^!*]/ }.users do
    it { should be_empty }
  end
end

control 'os-09' do
  impact 1.0
  title 'Check for .rhosts and .netrc file'
  rhosts = command('find / -maxdepth 3 -name .rhosts').stdout.split(/\r?\n/)
  describe rhosts do
    it { should be_empty }
  end
end

control 'os-10' do
  impact 1.0
  title 'CIS: Disable unused filesystems'
  only_if('kernel modules are the host\'s') { !container_execution }
  describe file('/etc/modprobe.d/dev-sec.conf') do
    its('content') { should match 'install cramfs /bin/true' }
  end
end

control 'os-12' do
  impact 0.5
  title 'No world-writable directory without the sticky bit'
  dirs = command('find / -xdev -type d \( -perm -0002 -a ! -perm -1000 \) -print 2>/dev/null').stdout.strip.split("\n")
  describe dirs do
    it { should be_empty }
  end
end

control 'os-13' do
  impact 0.3
  title 'Passwords are checked for quality, with retries'
  only_if('PAM is not configured') { file('/etc/pam.d/common-password').exist? }
  describe pam('/etc/pam.d/common-password') do
    its('lines') { should match_pam_rule('password requisite pam_pwquality.so') }
    its('lines') { should match_pam_rule('password .* pam_pwquality.so').any_with_integer_arg('retry', '>=', 3) }
  end
end
