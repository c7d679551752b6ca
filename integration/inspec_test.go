package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
)

// inspecProfile is rootscan's InSpec test profile: controls in the styles of dev-sec's linux-baseline and
// ssh-baseline and MITRE's STIG baselines (guards, inputs, loops, filter tables, a library, an overlay).
const inspecProfile = "../compliance/inspec/testdata/debian-hardening"

// heimdallScript prints the status Heimdall shows for each control of an HDF file, read with Heimdall's own
// reader (npm inspecjs: convertFile, then hdfWrapControl(control).status).
const heimdallScript = `
const fs = require('fs');
const {convertFile, hdfWrapControl} = require('inspecjs');
const res = convertFile(fs.readFileSync(process.argv[2], 'utf8'), true);
if (!res['1_0_ExecJson']) { console.error(JSON.stringify(res.errors || res)); process.exit(2); }
const out = {};
for (const p of res['1_0_ExecJson'].profiles) {
  if (p.parent_profile) continue; // an overlay's dependency: Heimdall shows the overlay's merged controls
  for (const c of p.controls) {
    try { out[c.id] = hdfWrapControl(c).status; } catch (e) { out[c.id] = 'exception: ' + e; }
  }
}
console.log(JSON.stringify(out));
`

// heimdallStatuses reads an HDF file with inspecjs (installed in the testbed cache by the compliance package's
// test); without node or inspecjs the test is skipped unless ROOTSCAN_INTEGRATION=require.
func heimdallStatuses(t *testing.T, hdf string) map[string]string {
	t.Helper()
	cache := os.Getenv("ROOTSCAN_TESTBED_CACHE")
	if cache == "" {
		cache = "/var/cache/rootscan-testbed"
	}
	mods := filepath.Join(cache, "inspecjs", "node_modules")
	_, errNode := exec.LookPath("node")
	if _, err := os.Stat(filepath.Join(mods, "inspecjs", "package.json")); err != nil || errNode != nil {
		if os.Getenv("ROOTSCAN_INTEGRATION") == "require" {
			t.Fatalf("inspecjs not available (run the compliance package's TestHDFHeimdallStatus first): %v %v", err, errNode)
		}
		t.Skipf("inspecjs not available: %v %v", err, errNode)
	}
	script := filepath.Join(t.TempDir(), "status.js")
	if err := os.WriteFile(script, []byte(heimdallScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script, hdf)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspecjs: %v", err)
	}
	got := map[string]string{}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("inspecjs output %q: %v", out, err)
	}
	return got
}

// inspecWant is a control's expected Heimdall status and a substring of rootscan's message.
type inspecWant struct{ heimdall, msg string }

// assertInSpec scans with the test profile and asserts every control's Heimdall status (from the HDF) and
// message (from the JSON report).
func assertInSpec(t *testing.T, what string, args []string, want map[string]inspecWant) map[string]any {
	t.Helper()
	return assertInSpecProfile(t, what, inspecProfile, args, want)
}

// assertInSpecProfile is assertInSpec with another profile; it returns the HDF document.
func assertInSpecProfile(t *testing.T, what, profile string, args []string, want map[string]inspecWant) map[string]any {
	t.Helper()
	hdfDir := t.TempDir()
	args = append([]string{"scan", "-o", "json", "--no-baseline", "--profile", profile, "--hdf-dir", hdfDir}, args...)
	res := runRootscan(t, 2*time.Minute, args...)
	if res.code != 0 {
		t.Fatalf("%s: exit %d: %s", what, res.code, res.stderr)
	}
	r := decode(t, res).Reports[0]
	files, _ := filepath.Glob(filepath.Join(hdfDir, "*.hdf.json"))
	if len(files) != 1 {
		t.Fatalf("%s: HDF files %v", what, files)
	}
	doc := readHDF(t, files[0]) // valid against the exec-JSON schema
	heimdall := heimdallStatuses(t, files[0])
	msgs := map[string]report.ControlResult{}
	for _, c := range r.Result.Compliance {
		msgs[c.ID] = c
	}
	for id, w := range want {
		if heimdall[id] != w.heimdall || !strings.Contains(msgs[id].Message, w.msg) {
			t.Errorf("%s: %s: Heimdall %q (rootscan %s %q), want %q with %q", what, id, heimdall[id], msgs[id].Status, msgs[id].Message, w.heimdall, w.msg)
		}
	}
	if len(heimdall) != len(want) || len(msgs) != len(want) {
		t.Errorf("%s: Heimdall read %d controls, rootscan reported %d, want %d", what, len(heimdall), len(msgs), len(want))
	}
	return doc
}

// The controls every root answers the same way: a library resource that runs find and two find commands (answered
// from the root's tree), a kernel guard, an overlay of a dependency that is not vendored, a STIG control not
// applicable to containers, a pam control guarded on PAM's presence.
func inspecCommon() map[string]inspecWant {
	return map[string]inspecWant{
		"os-01":     {"Passed", ""},
		"os-03":     {"Passed", ""},
		"os-06":     {"Passed", ""}, // no SGID file on the blocklist (passwd's chage and expiry are SGID shadow)
		"os-07":     {"Passed", ""},
		"os-09":     {"Passed", ""},
		"os-12":     {"Passed", ""}, // /tmp and /var/tmp are world-writable with the sticky bit
		"os-13":     {"Not Reviewed", "Skipped control due to only_if condition: PAM is not configured"},
		"os-10":     {"Not Reviewed", "Skipped control due to only_if condition: kernel modules are the host's"},
		"os-11":     {"Not Applicable", "dependency linux-baseline is not declared in inspec.yml depends"},
		"SV-230324": {"Not Applicable", "Skipped control due to only_if condition: This control is Not Applicable to containers"},
	}
}

// The profile on the distroless image (an OCI layout built from Debian's packages): no shell, no sshd, no
// login.defs, no shadow.
func TestInSpecProfileDistroless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, layout, _ := distrolessLayout(t, ctx)
	assertInSpec(t, "distroless", []string{"--oci", layout}, distrolessWant())
}

// distrolessWant is the profile's outcome on the distroless image.
func distrolessWant() map[string]inspecWant {
	want := inspecCommon()
	want["os-02"] = inspecWant{"Not Reviewed", "Skipped control due to only_if condition: the image has no /etc/shadow"}
	want["os-05"] = inspecWant{"Not Reviewed", "Skipped control due to only_if condition: login.defs is not installed"}
	want["os-08"] = inspecWant{"Passed", ""} // uid 0 is root's only; shadow's check is skipped: "Can't find file"
	for _, id := range []string{"sshd-01", "sshd-02", "sshd-05", "sshd-11", "sshd-pkg"} {
		want[id] = inspecWant{"Not Reviewed", "Skipped control due to only_if condition: sshd is not installed"}
	}
	want["SV-230383"] = inspecWant{"Not Reviewed", "The system does not have login.defs, so UMASK cannot be checked"}
	return want
}

// debianSSHRoot unpacks base-files, openssh-server, login and passwd into a root the way their maintainer
// scripts leave it: Debian's account files (shadow root:shadow 0640), sshd_config copied from the package's
// default, and a dpkg status database listing the packages.
func debianSSHRoot(t *testing.T, ctx context.Context) string {
	t.Helper()
	root := t.TempDir()
	pkgs := []string{"base-files", "openssh-server", "login", "passwd"}
	debs := langUnpackDebs(t, ctx, root, pkgs)
	var status strings.Builder
	for _, p := range pkgs {
		out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", debs[p]).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", debs[p], err)
		}
		status.WriteString("Status: install ok installed\n" + strings.TrimSpace(string(out)) + "\n\n")
	}
	def, err := os.ReadFile(filepath.Join(root, "usr/share/openssh/sshd_config"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"var/lib/dpkg/status": status.String(),
		"etc/ssh/sshd_config": string(def),
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
			"sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/bash\n",
		"etc/group":  "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nusers:x:100:\napp:x:1000:\n",
		"etc/shadow": "root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nsshd:!:19700::::::\napp:$y$j9T$salt$hash:19700:0:99999:7:::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(root, "etc/shadow"), 0, 42); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "etc/shadow"), 0o640); err != nil {
		t.Fatal(err)
	}
	return root
}

// The profile on a Debian root with openssh-server and login as installed: Debian's defaults fail the hardening
// controls, each with what it found.
func TestInSpecProfileDebianSSH(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := debianSSHRoot(t, ctx)
	want := inspecCommon()
	want["os-02"] = inspecWant{"Passed", ""}
	want["os-05"] = inspecWant{"Failed", `login.defs UMASK is expected to include "027": expected "022" to include "027"; login.defs PASS_MAX_DAYS is expected to cmp <= 60: expected: it to be <= 60` + "\n" + `     got: "99999"`}
	want["os-08"] = inspecWant{"Failed", "[\"app\"] is expected to be empty: expected `[\"app\"].empty?` to be truthy, got false"}
	want["sshd-01"] = inspecWant{"Passed", ""}
	want["sshd-02"] = inspecWant{"Failed", "File /etc/ssh/sshd_config is expected not to be readable by others"}
	want["sshd-05"] = inspecWant{"Failed", "expected nil to match /no|without-password|prohibit-password/"}
	want["sshd-11"] = inspecWant{"Failed", `SSHD Configuration Ciphers is expected to cmp == "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com"`}
	want["sshd-pkg"] = inspecWant{"Passed", ""} // the version holds, and describe.one passes on Subsystem
	want["SV-230383"] = inspecWant{"Failed", `login.defs UMASK is expected to cmp == "027"`}
	assertInSpec(t, "debian with sshd", []string{"--dir", root}, want)
}

// The same root hardened: sshd_config 0600 with root login, X11 forwarding off and the ciphers set, login.defs
// with umask 027 and password ageing, the one password locked. Every control that runs passes.
func TestInSpecProfileDebianHardened(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := debianSSHRoot(t, ctx)
	edit := func(name string, pairs ...string) {
		t.Helper()
		p := filepath.Join(root, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("%s has no %q", name, pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edit("etc/ssh/sshd_config", "#PermitRootLogin prohibit-password", "PermitRootLogin no",
		"X11Forwarding yes", "X11Forwarding no\nCiphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com")
	if err := os.Chmod(filepath.Join(root, "etc/ssh/sshd_config"), 0o600); err != nil {
		t.Fatal(err)
	}
	edit("etc/login.defs", "\nUMASK\t\t022", "\nUMASK\t\t027", "\nPASS_MAX_DAYS\t99999", "\nPASS_MAX_DAYS\t60", "\nPASS_MIN_DAYS\t0", "\nPASS_MIN_DAYS\t7")
	if err := os.Chmod(filepath.Join(root, "etc/login.defs"), 0o644); err != nil {
		t.Fatal(err)
	}
	edit("etc/shadow", "app:$y$j9T$salt$hash", "app:!$y$j9T$salt$hash")
	if err := os.Chmod(filepath.Join(root, "etc/shadow"), 0o640); err != nil {
		t.Fatal(err)
	}
	// common-password as pam-auth-update writes it with libpam-pwquality's profile and retry=3 added.
	if err := os.MkdirAll(filepath.Join(root, "etc/pam.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	pw := "# here are the per-package modules (the \"Primary\" block)\n" +
		"password\trequisite\t\t\tpam_pwquality.so retry=3\n" +
		"password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt\n" +
		"password\trequisite\t\t\tpam_deny.so\npassword\trequired\t\t\tpam_permit.so\n"
	if err := os.WriteFile(filepath.Join(root, "etc/pam.d/common-password"), []byte(pw), 0o644); err != nil {
		t.Fatal(err)
	}
	want := inspecCommon()
	for _, id := range []string{"os-02", "os-05", "os-08", "os-13", "sshd-01", "sshd-02", "sshd-05", "sshd-11", "sshd-pkg", "SV-230383"} {
		want[id] = inspecWant{"Passed", ""}
	}
	assertInSpec(t, "hardened debian", []string{"--dir", root}, want)
}

// The profile on a running distroless container through the CRI, as a node scan finds it, with a waiver: the
// waived control is not run and Heimdall shows it not applicable, every other control as on the image.
func TestInSpecProfileContainer(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	_, id := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "app", Namespace: "apps"}, testbed.ContainerSpec{Name: "app", Image: ref.Name})
	waivers := filepath.Join(t.TempDir(), "waivers.yaml")
	if err := os.WriteFile(waivers, []byte("os-03:\n  justification: passwd is the image's\n  run: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hdfDir := t.TempDir()
	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir, "--no-baseline", "--profile", inspecProfile, "--waivers", waivers, "--hdf-dir", hdfDir)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	r := reportFor(t, doc, id)
	var hdf string
	files, _ := filepath.Glob(filepath.Join(hdfDir, "*.hdf.json"))
	for _, f := range files {
		if d := readHDF(t, f); d["platform"].(map[string]any)["target_id"] == r.Target.Name() {
			hdf = f
		}
	}
	if hdf == "" {
		t.Fatalf("no HDF file for %s among %v", r.Target.Name(), files)
	}
	want := distrolessWant()
	want["os-03"] = inspecWant{"Not Applicable", "waived: passwd is the image's"}
	heimdall := heimdallStatuses(t, hdf)
	for _, c := range r.Result.Compliance {
		w, ok := want[c.ID]
		if !ok || heimdall[c.ID] != w.heimdall || !strings.Contains(c.Message, w.msg) {
			t.Errorf("container: %s: Heimdall %q (rootscan %s %q), want %+v", c.ID, heimdall[c.ID], c.Status, c.Message, w)
		}
	}
	if len(r.Result.Compliance) != len(want) || len(heimdall) != len(want) {
		t.Errorf("container: %d results, Heimdall read %d, want %d", len(r.Result.Compliance), len(heimdall), len(want))
	}
	assertNoMountsUnder(t, mountDir)
}

// The daemon evaluates the InSpec profile on every container it watches and exports its controls in the
// compliance metrics like the CEL profiles'.
func TestInSpecProfileDaemon(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	d, mounts := startReadyDaemon(t, bed, "--db", filepath.Join(t.TempDir(), "db"),
		"--node-name", "node-1", "--resync", "1h", "--no-baseline", "--profile", inspecProfile)
	runWebApp(t, ctx, bed, ref.Name)
	labels := []string{"namespace=shop", "pod=web", "container=app", "node=node-1"}
	count := func(status, severity string) float64 {
		_, body := d.get("/metrics")
		v, _ := metric(body, exporter.MetricComplianceControls, append(labels, "status="+status, "severity="+severity)...)
		return v
	}
	// On distroless: os-01, os-03, os-08 and os-09 (find, from the tree) pass at impact 1.0, os-07 at 0.7, os-06
	// and os-12 (find) at 0.5 (see distrolessWant).
	waitUntil(t, "the InSpec controls in the metrics", 60*time.Second, func() bool {
		return count("passed", "critical") == 4 && count("passed", "high") == 1 && count("passed", "medium") == 2
	})
	if n := count("skipped", "critical"); n < 1 {
		t.Errorf("no skipped critical control in the metrics (%v)", n)
	}
	d.terminate(t)
	assertNoMountsUnder(t, mounts)
}
