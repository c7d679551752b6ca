package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
	"github.com/rootscan/rootscan/report"
)

// controlStatuses renders a report's control results as "id status" lines, with the message for failures, for
// exact comparison.
func controlStatuses(t testing.TB, r report.Report) map[string]report.ControlResult {
	t.Helper()
	if r.Result == nil {
		t.Fatalf("no result: %s", r.Error)
	}
	out := map[string]report.ControlResult{}
	for _, c := range r.Result.Compliance {
		out[c.Profile+"/"+c.ID] = c
	}
	return out
}

func assertControls(t testing.TB, what string, got map[string]report.ControlResult, want map[string]string) {
	t.Helper()
	for id, w := range want {
		status, msg, _ := strings.Cut(w, " ")
		c, ok := got[id]
		if !ok {
			t.Errorf("%s: no result for %s", what, id)
			continue
		}
		if c.Status != status || !strings.Contains(c.Message, msg) {
			t.Errorf("%s: %s = %s %q, want %s with %q", what, id, c.Status, c.Message, status, msg)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d control results, want %d", what, len(got), len(want))
	}
}

// The built-in baseline on the distroless image: everything a hardened image should be passes; the read-only root
// cannot be judged on an image (no security context), so it is skipped with the reason.
func TestComplianceBaselineDistroless(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, layout, _ := distrolessLayout(t, ctx)
	hdfDir := t.TempDir()
	res := runRootscan(t, 2*time.Minute, "scan", "-o", "json", "--oci", layout, "--hdf-dir", hdfDir)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	r := decode(t, res).Reports[0]
	if r.Target.Config == nil || r.Target.Config.User != "65532" {
		t.Errorf("image config = %+v, want user 65532", r.Target.Config)
	}
	want := map[string]string{}
	for i := 1; i <= 11; i++ {
		want[fmt.Sprintf("container-baseline/container-baseline-%02d", i)] = "passed "
	}
	want["container-baseline/container-baseline-12"] = "skipped not a running container, so no security context to check"
	assertControls(t, "distroless", controlStatuses(t, r), want)
	for _, c := range r.Result.Compliance {
		if len(c.Tags["nist"]) == 0 || c.Severity == "" || c.Title == "" {
			t.Errorf("%s: tags %v severity %q title %q", c.ID, c.Tags, c.Severity, c.Title)
		}
	}
	hdf := readHDF(t, filepath.Join(hdfDir, "oci_layout.hdf.json"))
	if st := hdf["statistics"].(map[string]any)["controls"].(map[string]any); fmt.Sprint(st) != "map[failed:map[total:0] passed:map[total:11] skipped:map[total:1]]" {
		t.Errorf("HDF statistics %v", st)
	}
}

// readHDF reads an HDF file and validates it against the shape Heimdall requires (the exec-JSON schema's
// required fields and types).
func readHDF(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	schema, err := jsonschema.UnmarshalJSON(strings.NewReader(hdfSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("hdf.json", schema); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("hdf.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("%s is not valid HDF: %v", name, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// hdfSchema is what Heimdall needs of an exec-JSON document: every required member of the document, profile,
// control and result, with its type.
const hdfSchema = `{
  "type": "object",
  "required": ["platform", "profiles", "statistics", "version"],
  "properties": {
    "platform": {"type": "object", "required": ["name", "release"],
      "properties": {"name": {"type": "string"}, "release": {"type": "string"}, "target_id": {"type": "string"}}},
    "version": {"type": "string"},
    "statistics": {"type": "object", "properties": {"duration": {"type": "number"},
      "controls": {"type": "object", "additionalProperties": {"type": "object", "required": ["total"]}}}},
    "profiles": {"type": "array", "items": {
      "type": "object",
      "required": ["name", "sha256", "supports", "attributes", "groups", "controls"],
      "properties": {
        "name": {"type": "string"}, "sha256": {"type": "string"},
        "supports": {"type": "array"}, "attributes": {"type": "array"},
        "groups": {"type": "array", "items": {"type": "object", "required": ["id", "controls"]}},
        "controls": {"type": "array", "items": {
          "type": "object",
          "required": ["id", "title", "desc", "impact", "refs", "tags", "code", "source_location", "results"],
          "properties": {
            "id": {"type": "string"}, "title": {"type": ["string", "null"]}, "desc": {"type": ["string", "null"]},
            "descriptions": {"type": "array", "items": {"type": "object", "required": ["label", "data"]}},
            "impact": {"type": "number", "minimum": 0, "maximum": 1},
            "refs": {"type": "array"}, "tags": {"type": "object"}, "code": {"type": "string"},
            "source_location": {"type": "object", "required": ["ref", "line"],
              "properties": {"ref": {"type": "string"}, "line": {"type": "number"}}},
            "results": {"type": "array", "minItems": 1, "items": {
              "type": "object", "required": ["code_desc", "run_time", "start_time"],
              "properties": {
                "status": {"enum": ["passed", "failed", "skipped", "error"]},
                "code_desc": {"type": "string"}, "run_time": {"type": "number"}, "start_time": {"type": "string"},
                "message": {"type": "string"}, "skip_message": {"type": "string"}, "exception": {"type": "string"}}}},
            "waiver_data": {"type": "object", "properties": {"run": {"type": "boolean"},
              "justification": {"type": "string"}, "expiration_date": {"type": "string"},
              "skipped_due_to_waiver": {"type": "string"}}}}}}}}}
  }
}`

// debianHardeningFails is the Debian image with a shell plus what the baseline exists to catch: a setuid binary,
// a planted SSH private key, cloud credentials, a second uid 0 account, a world-writable directory and a compiler.
func debianHardeningFails(t testing.TB, ctx context.Context) string {
	t.Helper()
	img, err := ociimage.DebianShell(ctx, ociimage.DefaultCacheDir())
	if err != nil {
		t.Fatalf("build debian image: %v", err)
	}
	img.Layers = append(img.Layers, ociimage.Layer{Files: []ociimage.File{
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\ntoor:x:0:0::/root:/bin/sh\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\ndaemon:x:1:\n")},
		{Path: "usr/local/bin/escalate", Mode: fs.ModeSetuid | 0o755, Data: []byte("\x7fELF")},
		{Path: "root/.ssh/id_ed25519", Mode: 0o600, Data: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n")},
		{Path: "root/.ssh/id_ed25519.pub", Mode: 0o644, Data: []byte("ssh-ed25519 AAAA test\n")},
		{Path: "etc/ssl/certs/not-a-key.pem", Mode: 0o644, Data: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
		{Path: "root/.aws/credentials", Mode: 0o600, Data: []byte("[default]\naws_access_key_id = AKIAEXAMPLE\n")},
		{Path: "srv/upload", Mode: fs.ModeDir | 0o777},
		{Path: "usr/local/bin/gcc", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}})
	layout := filepath.Join(t.TempDir(), "layout")
	if _, err := img.WriteLayout(layout); err != nil {
		t.Fatal(err)
	}
	return layout
}

// The baseline against a Debian image with a shell, a setuid binary and a planted key: each control that should
// fail fails, with what it found; a site profile from a folder, an expired and an active waiver, and HDF output.
func TestComplianceBaselineDebianShell(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	layout := debianHardeningFails(t, ctx)
	profiles := t.TempDir()
	site := `name: site
version: 0.1.0
controls:
  - id: site-01
    title: Debian 12
    impact: 0.3
    checks:
      - expr: parse_config("/etc/os-release", "keyvalue").VERSION_ID == "12"
  - id: site-02
    title: passwd is private
    impact: 0.5
    checks:
      - desc: passwd mode
        expr: file("/etc/passwd").mode_octal == "0600"
        observed: file("/etc/passwd").mode_octal
`
	if err := os.WriteFile(filepath.Join(profiles, "site.yaml"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	waivers := filepath.Join(t.TempDir(), "waivers.yaml")
	if err := os.WriteFile(waivers, []byte("container-baseline-07:\n  justification: legacy accounts\n  expiration_date: 2020-01-01\n"+
		"site-02:\n  justification: accepted until the rebuild\n  expiration_date: 2999-12-31\n  run: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hdfDir := t.TempDir()
	res := runRootscan(t, 2*time.Minute, "scan", "-o", "json", "--oci", layout, "--profile", profiles, "--waivers", waivers, "--hdf-dir", hdfDir)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	r := decode(t, res).Reports[0]
	assertControls(t, "debian", controlStatuses(t, r), map[string]string{
		"container-baseline/container-baseline-01": `failed observed ["sh", "bash", "dash"]`,
		"container-baseline/container-baseline-02": `failed observed ["apt", "apt-get", "dpkg"]`,
		"container-baseline/container-baseline-03": `failed observed 0`,
		"container-baseline/container-baseline-04": `failed observed ["/usr/local/bin/escalate"]`,
		"container-baseline/container-baseline-05": `failed observed ["/srv/upload"]`,
		"container-baseline/container-baseline-06": `failed observed ["toor"]`,
		"container-baseline/container-baseline-07": `failed waiver expired on 2020-01-01; check 1 (no account with an interactive shell): observed ["root", "toor"]`,
		"container-baseline/container-baseline-08": `failed check 1 (a CA bundle exists and is not empty): expected true`,
		"container-baseline/container-baseline-09": `failed observed ["/root/.ssh/id_ed25519"]`,
		"container-baseline/container-baseline-10": `failed observed ["/root/.aws/credentials"]`,
		"container-baseline/container-baseline-11": `failed check 1 (no compiler or debugger on PATH): observed ["gcc"]`,
		"container-baseline/container-baseline-12": `skipped not a running container`,
		"site/site-01": "passed ",
		"site/site-02": "skipped waived: accepted until the rebuild (until 2999-12-31)",
	})
	if c := controlStatuses(t, r)["site/site-02"]; c.Waiver == nil || c.Waiver.Justification != "accepted until the rebuild" || len(c.Checks) != 0 {
		t.Errorf("site-02 waiver = %+v checks %d", c.Waiver, len(c.Checks))
	}
	hdf := readHDF(t, filepath.Join(hdfDir, "oci_layout.hdf.json"))
	profs := hdf["profiles"].([]any)
	if len(profs) != 2 || profs[1].(map[string]any)["name"] != "site" {
		t.Fatalf("HDF profiles: %v", len(profs))
	}
	c2 := profs[1].(map[string]any)["controls"].([]any)[1].(map[string]any)
	wd, _ := c2["waiver_data"].(map[string]any)
	if wd["skipped_due_to_waiver"] != "true" || wd["expiration_date"] != "2999-12-31" || c2["source_location"].(map[string]any)["line"] != float64(9) {
		t.Errorf("HDF site-02: waiver %v, source %v", wd, c2["source_location"])
	}
	setuid := profs[0].(map[string]any)["controls"].([]any)[3].(map[string]any)["results"].([]any)[0].(map[string]any)
	if setuid["status"] != "failed" || setuid["code_desc"] != "no setuid or setgid regular files" || setuid["message"] != `observed ["/usr/local/bin/escalate"]` {
		t.Errorf("HDF setuid result %v", setuid)
	}

	// The table shows the summary and each failure; -o hdf writes one document for one target.
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "--packages=false")
	if !strings.Contains(res.stdout, "11 failed, 1 skipped") || !strings.Contains(res.stdout, "compliance: failed container-baseline/container-baseline-09 (CRITICAL) No private keys in the image") {
		t.Errorf("table output:\n%s", res.stdout)
	}
	res = runRootscan(t, 2*time.Minute, "scan", "--oci", layout, "-o", "hdf", "--no-baseline", "--profile", filepath.Join(profiles, "site.yaml"))
	var doc struct {
		Platform struct{ Name, Release string }
		Profiles []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || doc.Platform.Name != "debian" || doc.Platform.Release != "12" || len(doc.Profiles) != 1 {
		t.Errorf("-o hdf: %v %+v\n%s", err, doc, res.stderr)
	}

	// A broken profile is refused before anything is scanned, with file, line and the CEL message.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\ncontrols:\n  - id: b\n    checks:\n      - expr: users().size() > \"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"profile", "check", bad}, {"scan", "--oci", layout, "--profile", bad}} {
		res = runRootscan(t, time.Minute, args...)
		if res.code == 0 || !strings.Contains(res.stderr, bad+":5: control b check 1: found no matching overload for '_>_' applied to '(int, string)'") {
			t.Errorf("%v: exit %d, stderr %s", args, res.code, res.stderr)
		}
	}
	res = runRootscan(t, time.Minute, "profile", "check", "builtin:container-baseline", profiles)
	if res.code != 0 || !strings.Contains(res.stdout, "profile container-baseline 1.0.0: 12 controls OK") || !strings.Contains(res.stdout, "profile site 0.1.0: 2 controls OK") {
		t.Errorf("profile check: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// A container through the private containerd: the image config comes from containerd, the security context and
// the volumes from the CRI, and a control on /etc/nginx/nginx.conf reads the ConfigMap-like volume mounted there.
// A scope applies the nginx profile to the labelled pod only.
func TestComplianceContainerVolumes(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	// A ConfigMap volume as kubelet lays it out: timestamped dir, ..data link, one link per key.
	cm := t.TempDir()
	for name, target := range map[string]string{"..data": "..2026_01_01_00_00_00.1", "nginx.conf": "..data/nginx.conf"} {
		if err := os.MkdirAll(filepath.Join(cm, "..2026_01_01_00_00_00.1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(cm, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cm, "..2026_01_01_00_00_00.1", "nginx.conf"), []byte("server_tokens off;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid := int64(65532)
	pod, err := bed.RunPod(ctx, testbed.PodSpec{Name: "web", Namespace: "web", Labels: map[string]string{"app": "nginx"}})
	if err != nil {
		t.Fatal(err)
	}
	hardened, err := bed.RunContainer(ctx, pod, testbed.ContainerSpec{
		Name: "nginx", Image: ref.Name, RunAsUser: &uid, ReadonlyRootfs: true,
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/etc/nginx", HostPath: cm, Readonly: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, plain := runPodWith(t, ctx, bed, testbed.PodSpec{Name: "batch", Namespace: "jobs"}, testbed.ContainerSpec{Name: "job", Image: ref.Name})

	dir := t.TempDir()
	profile := filepath.Join(dir, "nginx.yaml")
	if err := os.WriteFile(profile, []byte(`name: nginx
controls:
  - id: nginx-01
    title: server tokens off
    impact: 0.5
    checks:
      - expr: file("/etc/nginx/nginx.conf").content.contains("server_tokens off;")
      - expr: mounts().exists(m, m.container_path == "/etc/nginx" && m.read_only)
`), 0o644); err != nil {
		t.Fatal(err)
	}
	scope := filepath.Join(dir, "scope.yaml")
	if err := os.WriteFile(scope, []byte("scopes:\n  - profiles: [nginx]\n    namespaces: [web]\n    labels: {app: nginx}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mountDir := filepath.Join(t.TempDir(), "mounts")
	doc, res := scanJSON(t, bed, mountDir, "--profile", profile, "--profile-scope", scope)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	h := reportFor(t, doc, hardened)
	tg := h.Target
	if tg.Security == nil || !tg.Security.ReadOnlyRootFilesystem || tg.Security.RunAsUser == nil || *tg.Security.RunAsUser != uid {
		t.Errorf("security context = %+v", tg.Security)
	}
	if tg.Config == nil || tg.Config.User != "65532" || len(tg.Config.Entrypoint) != 1 || tg.Config.Entrypoint[0] != "/app" {
		t.Errorf("image config = %+v", tg.Config)
	}
	found := false
	for _, m := range tg.Mounts {
		found = found || (m.ContainerPath == "/etc/nginx" && m.HostPath == cm && m.ReadOnly)
	}
	if !found || tg.PodLabels["app"] != "nginx" {
		t.Errorf("mounts %+v, pod labels %v", tg.Mounts, tg.PodLabels)
	}
	got := controlStatuses(t, h)
	want := map[string]string{"nginx/nginx-01": "passed "}
	for i := 1; i <= 12; i++ {
		want[fmt.Sprintf("container-baseline/container-baseline-%02d", i)] = "passed "
	}
	assertControls(t, "hardened container", got, want)

	p := reportFor(t, doc, plain)
	got = controlStatuses(t, p)
	want = map[string]string{}
	for i := 1; i <= 11; i++ {
		want[fmt.Sprintf("container-baseline/container-baseline-%02d", i)] = "passed "
	}
	want["container-baseline/container-baseline-12"] = "failed check 1 (read-only root filesystem requested): expected true"
	assertControls(t, "plain container (out of the nginx scope)", got, want)
	assertNoMountsUnder(t, mountDir)
}
