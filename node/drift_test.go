package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// A volume's mount point, and the parents runc created empty for it, are the runtime's doing; a file the workload
// wrote beside them, or below a created parent, is still drift.
func TestScanDriftLeavesOutVolumeMountPoints(t *testing.T) {
	upper, image := t.TempDir(), t.TempDir()
	for _, d := range []string{"etc", "var/lib"} {
		mkdirAll(t, filepath.Join(image, d))
	}
	for _, d := range []string{
		"etc/rootscan",     // ConfigMap mount point under an image directory
		"run/rootscan",     // emptyDir whose parent the image lacks
		"var/lib/rootscan", // hostPath
		"host/proc/sys",    // hostPath whose created parents are all runc's
		"data/in",          // mount point whose parent also holds a workload file
		"var/run/secrets/kubernetes.io/serviceaccount", // the token, a default mount point
	} {
		mkdirAll(t, filepath.Join(upper, d))
	}
	writeFile(t, filepath.Join(upper, "dev/termination-log"), "")
	writeFile(t, filepath.Join(upper, "data/added.txt"), "mine")
	writeFile(t, filepath.Join(upper, "etc/added.conf"), "x=1")

	mounts := []report.Mount{
		{ContainerPath: "/etc/rootscan", ReadOnly: true},
		{ContainerPath: "/run/rootscan/"},
		{ContainerPath: "/var/lib/rootscan", HostPath: "/var/lib/rootscan"},
		{ContainerPath: "/host/proc/sys", HostPath: "/proc/sys"},
		{ContainerPath: "/data/in"},
		{ContainerPath: "/"},
		{ContainerPath: "../../escape"},
	}
	got, errs, err := ScanDrift(scan.DriftOptions{})(context.Background(), openRoot(t, upper), openRoot(t, image), mounts)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Change+" "+e.Path)
	}
	want := []string{"added data/added.txt", "added etc/added.conf"}
	if !slices.Equal(paths, want) {
		t.Errorf("drift %q, want %q (errors %+v)", paths, want, errs)
	}

	// Without the mounts, the same upper dir reports the mount points: the test can fail.
	got, _, err = ScanDrift(scan.DriftOptions{})(context.Background(), openRoot(t, upper), openRoot(t, image), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) <= len(want) {
		t.Errorf("without mounts only %d entries: %+v", len(got), got)
	}
}

func TestDriftMountPoints(t *testing.T) {
	base := []string{"proc", "etc/hosts"}
	got := driftMountPoints(base, []report.Mount{
		{ContainerPath: "/etc/hosts"}, {ContainerPath: "/a//b/"}, {ContainerPath: "/"}, {ContainerPath: "/../x"}, {ContainerPath: ""},
	})
	if want := []string{"proc", "etc/hosts", "a/b", "x"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(base) != 2 {
		t.Errorf("base changed: %q", base)
	}
}

func openRoot(t *testing.T, dir string) *fsaccess.Root {
	t.Helper()
	r, err := fsaccess.OpenDir(dir, fsaccess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	mkdirAll(t, filepath.Dir(name))
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
