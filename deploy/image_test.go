package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/internal/imagebuild"
)

// pinned reads deploy/image.env, the one place the image the manifests run is named.
func pinned(t *testing.T) imagebuild.Pin {
	t.Helper()
	b, err := os.ReadFile(imagebuild.PinFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := imagebuild.ParsePin(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// container returns the DaemonSet's scanner container.
func container(t *testing.T, objs []object) corev1.Container {
	t.Helper()
	var ds appsv1.DaemonSet
	strict(t, find(t, objs, "DaemonSet"), &ds)
	return ds.Spec.Template.Spec.Containers[0]
}

// TestImagePinnedFiles: the kustomize base's images entry and the chart's image values and appVersion are
// deploy/image.env's, as `make image IMAGE_PIN=1` writes them (read from the files: no tool needed).
func TestImagePinnedFiles(t *testing.T) {
	p := pinned(t)
	var kust struct {
		Images []struct {
			Name, NewName, NewTag, Digest string
		} `json:"images"`
	}
	readYAML(t, "kustomize/base/kustomization.yaml", &kust)
	if len(kust.Images) != 1 || kust.Images[0].Name != p.Repository || kust.Images[0].NewName != "" ||
		kust.Images[0].NewTag != p.Tag || kust.Images[0].Digest != p.Digest {
		t.Errorf("kustomize base images %+v, want %s tag %s digest %s", kust.Images, p.Repository, p.Tag, p.Digest)
	}
	var values struct {
		Image struct{ Repository, Tag, Digest, PullPolicy string } `json:"image"`
	}
	readYAML(t, "helm/rootscan/values.yaml", &values)
	if v := values.Image; v.Repository != p.Repository || v.Tag != p.Tag || v.Digest != p.Digest || v.PullPolicy != "IfNotPresent" {
		t.Errorf("chart image values %+v, want %+v and IfNotPresent", v, p)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, "helm/rootscan/Chart.yaml", &chart)
	if chart.AppVersion != p.Tag {
		t.Errorf("chart appVersion %q, image tag %q", chart.AppVersion, p.Tag)
	}
	// The DaemonSet names the repository only: a tag there would be a second place to keep.
	if c := container(t, baseFiles(t, "kustomize/base")); c.Image != p.Repository {
		t.Errorf("base daemonset.yaml image %q, want the bare repository %q", c.Image, p.Repository)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestImageRendered: kustomize and Helm both render repository:tag@digest from image.env, and the pull policy and
// the tag can be overridden as deploy/README.md says.
func TestImageRendered(t *testing.T) {
	p := pinned(t)
	for name, objs := range map[string][]object{
		"kustomize base":            renderKustomize(t, "kustomize/base"),
		"kustomize least-privilege": renderKustomize(t, "kustomize/least-privilege"),
		"helm":                      renderHelm(t),
	} {
		if c := container(t, objs); c.Image != p.Ref() || c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s runs %s (%s), want %s (IfNotPresent)", name, c.Image, c.ImagePullPolicy, p.Ref())
		}
	}
	c := container(t, renderHelm(t, "--set", "image.pullPolicy=Always", "--set", "image.tag=9.9.9", "--set", "image.digest="))
	if c.Image != p.Repository+":9.9.9" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("helm with another tag and Always: %s (%s)", c.Image, c.ImagePullPolicy)
	}
	// kustomize takes no absolute resource paths: the overlay and a copy of the base side by side.
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "base"), os.DirFS("kustomize/base")); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "my-overlay")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), readmeOverlay(t), 0o644); err != nil {
		t.Fatal(err)
	}
	c = container(t, renderKustomize(t, overlay))
	if c.Image != p.Repository+":9.9.9" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("README's kustomize overlay gives %s (%s), want tag 9.9.9 and Always", c.Image, c.ImagePullPolicy)
	}
}

// readmeOverlay is the kustomize overlay README.md shows for changing the image and its pull policy.
func readmeOverlay(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(# kustomize/my-overlay/kustomization.yaml\n.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no ```yaml block starting with # kustomize/my-overlay/kustomization.yaml")
	}
	return m[1]
}
