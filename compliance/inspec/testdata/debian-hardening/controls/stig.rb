# Controls in the style of MITRE's STIG baselines: long descs, tags, container guards with impact 0.0.
control 'SV-230324' do
  title 'All local interactive user accounts must be assigned a home directory upon creation.'
  desc 'If local interactive users are not assigned a valid home directory, there is no place to store and control files they should own.'
  desc 'check', 'Verify all local interactive users are assigned a home directory upon creation with the following command:

$ sudo grep -i create_home /etc/login.defs

CREATE_HOME yes

If the value for "CREATE_HOME" parameter is not set to "yes", the line is missing, or the line is commented out, this is a finding.'
  desc 'fix', 'Configure the operating system to assign home directories to all new local interactive users by setting the "CREATE_HOME" parameter in "/etc/login.defs" to "yes".'
  impact 0.5
  tag severity: 'medium'
  tag gtitle: 'SRG-OS-000480-GPOS-00227'
  tag gid: 'V-230324'
  tag rid: 'SV-230324r627750_rule'
  tag stig_id: 'RHEL-08-010760'
  tag cci: ['CCI-000366']
  tag nist: ['CM-6 b']
  tag 'host'
  ref 'DPMS Target Red Hat Enterprise Linux 8', url: 'https://public.cyber.mil/stigs/'

  only_if('This control is Not Applicable to containers', impact: 0.0) do
    !virtualization.system.eql?('docker')
  end

  describe login_defs do
    its('CREATE_HOME') { should eq 'yes' }
  end
end

control 'SV-230383' do
  title 'The operating system must define default permissions for all authenticated users in such a way that the user can only read and modify their own files.'
  desc 'Setting the most restrictive default permissions ensures that when new accounts are created, they do not have unnecessary access.'
  impact 0.5
  tag severity: 'medium'
  tag gid: 'V-230383'
  tag stig_id: 'RHEL-08-020351'
  tag nist: ['AC-6 (1)']
  tag 'host', 'container'

  umask = input('login_defs_umask')
  if file('/etc/login.defs').exist?
    describe login_defs do
      its('UMASK') { should cmp umask }
    end
  else
    describe 'The system does not have login.defs' do
      skip 'The system does not have login.defs, so UMASK cannot be checked'
    end
  end
end
