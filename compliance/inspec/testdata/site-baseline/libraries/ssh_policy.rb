class SshPolicy < Inspec.resource(1)
  name 'ssh_policy'

  def initialize
    @version = inspec.command('ssh -V').stderr
  end

  def ciphers
    @version.include?('9.') ? %w[aes256-gcm@openssh.com] : []
  end
end
