package compliance

import (
	"os"
	"path/filepath"
	"testing"
)

// A folder of profiles that is a mounted ConfigMap (kubelet's layout: a timestamped "..<time>" dir, a "..data" link
// to it and one link per key) loads each profile once, through its top-level link.
func TestLoadConfigMapFolder(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "..2026_01_01_00_00_00.1")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	profile := "name: site\ncontrols:\n  - id: site-01\n    title: t\n    impact: 0.5\n    checks:\n      - expr: \"true\"\n"
	if err := os.WriteFile(filepath.Join(data, "site.yaml"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"..data": "..2026_01_01_00_00_00.1", "site.yaml": "..data/site.yaml"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := NewLoader(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := l.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Name != "site" {
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		t.Errorf("loaded profiles %v, want [site] once", names)
	}
}
