package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Debian's real default sshd_config (openssh-server ships it as /usr/share/openssh/sshd_config; postinst copies
// it to /etc/ssh) read by parse_config(..., "sshd") through `rootscan scan --dir`: its settings, its Include of
// sshd_config.d (where cloud images drop "PasswordAuthentication yes", which then wins because it is read first),
// and Match blocks from a drop-in.
func TestComplianceSSHDDebianDefault(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := t.TempDir()
	langUnpackDebs(t, ctx, root, []string{"openssh-server"})
	def, err := os.ReadFile(filepath.Join(root, "usr/share/openssh/sshd_config"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"etc/ssh/sshd_config":                       string(def),
		"etc/ssh/sshd_config.d/50-cloud-init.conf":  "PasswordAuthentication yes\n",
		"etc/ssh/sshd_config.d/60-sftp-only.conf":   "Match Group sftponly\n    ChrootDirectory %h\n    ForceCommand internal-sftp\n    AllowTcpForwarding no\n",
		"etc/ssh/sshd_config.d/70-after-match.conf": "PermitRootLogin no\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checks := map[string]string{
		"usepam":           `c.usepam == "yes"`,
		"kbdinteractive":   `c.kbdinteractiveauthentication == "no"`,
		"x11":              `c.x11forwarding == "yes"`,
		"printmotd":        `c.printmotd == "no"`,
		"acceptenv":        `c.acceptenv == ["LANG", "LC_*"]`,
		"subsystem":        `c.subsystem == ["sftp /usr/lib/openssh/sftp-server"]`,
		"include":          `c.include == ["/etc/ssh/sshd_config.d/*.conf"]`,
		"no-port":          `!has(c.port) && !has(c.hostkey)`,
		"permitroot":       `c.permitrootlogin == "no"`,
		"match":            `c.match.size() == 1 && c.match[0].conditions == {"group": "sftponly"} && c.match[0].settings == {"chrootdirectory": "%h", "forcecommand": "internal-sftp", "allowtcpforwarding": "no"}`,
		"no-password-auth": `c.passwordauthentication == "no"`,
	}
	var b strings.Builder
	b.WriteString("name: sshd\ncontrols:\n")
	for id, expr := range checks {
		// Each "c." reads the parsed file, so a failing comparison reports what the file had.
		expr = strings.ReplaceAll(expr, "c.", `parse_config("/etc/ssh/sshd_config", "sshd").`)
		b.WriteString("  - id: " + id + "\n    checks:\n      - expr: |\n          " + expr + "\n")
	}
	prof := filepath.Join(t.TempDir(), "sshd.yaml")
	if err := os.WriteFile(prof, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runRootscan(t, time.Minute, "scan", "-o", "json", "--dir", root, "--no-baseline", "--profile", prof, "--packages=false")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	got := controlStatuses(t, decode(t, res).Reports[0])
	want := map[string]string{}
	for id := range checks {
		want["sshd/"+id] = "passed "
	}
	// The cloud drop-in is read at the Include, before the main file's own lines: password logins are on.
	want["sshd/no-password-auth"] = `failed observed "yes"`
	assertControls(t, "debian sshd_config", got, want)
}
