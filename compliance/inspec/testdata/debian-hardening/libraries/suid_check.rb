# A custom resource in dev-sec's style: it lists SUID files by running find in the target.
class SUIDCheck < Inspec.resource(1)
  name 'suid_check'
  desc 'Lists the SUID and SGID files of the system'

  def initialize(blocklist = nil)
    @blocklist = blocklist || []
    @suids = inspec.command('find / -perm -4000 -o -perm -2000 -type f ! -path \'/proc/*\' -print 2>/dev/null').stdout.split
  end

  def permissions
    @suids & @blocklist
  end

  def to_s
    'SUID/SGID blocklist'
  end
end
