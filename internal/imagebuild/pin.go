package imagebuild

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// Pin is the image reference the manifests run: kept in deploy/image.env, and
// copied from there into the kustomize base's images entry and the Helm
// chart's values and appVersion, which a test in deploy/ holds equal to it.
type Pin struct {
	Repository string
	Tag        string
	Digest     string
	// Revision is the commit the digest was built from: rebuilding it
	// (`make image VERSION=<tag>` there) gives the same digest.
	Revision string
}

// Ref is repository:tag@digest, as the manifests render it.
func (p Pin) Ref() string { return p.Repository + ":" + p.Tag + "@" + p.Digest }

// pinHeader explains deploy/image.env to whoever opens it.
const pinHeader = `# The image deploy/ runs: written by ` + "`make image VERSION=<tag> IMAGE_PIN=1`" + `, which also copies it into
# kustomize/base/kustomization.yaml (images) and helm/rootscan (values.yaml image, Chart.yaml appVersion); a test in
# deploy/ fails when they differ. IMAGE_DIGEST is what building IMAGE_REVISION with that tag gives.
`

// Format renders the pin as image.env (KEY=value lines).
func (p Pin) Format() []byte {
	return fmt.Appendf(nil, "%sIMAGE_REPOSITORY=%s\nIMAGE_TAG=%s\nIMAGE_DIGEST=%s\nIMAGE_REVISION=%s\n",
		pinHeader, p.Repository, p.Tag, p.Digest, p.Revision)
}

// ParsePin reads image.env; every key is required, comments and blank lines
// are skipped.
func ParsePin(b []byte) (Pin, error) {
	var p Pin
	fields := map[string]*string{"IMAGE_REPOSITORY": &p.Repository, "IMAGE_TAG": &p.Tag,
		"IMAGE_DIGEST": &p.Digest, "IMAGE_REVISION": &p.Revision}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || fields[k] == nil {
			return Pin{}, fmt.Errorf("image.env: unexpected line %q", line)
		}
		*fields[k] = v
	}
	for k, v := range fields {
		if *v == "" {
			return Pin{}, fmt.Errorf("image.env: no %s", k)
		}
	}
	if _, err := digest.Parse(p.Digest); err != nil {
		return Pin{}, fmt.Errorf("image.env: IMAGE_DIGEST: %w", err)
	}
	return p, sc.Err()
}

// pinEdits are the lines of deploy/ that carry the pin, each matched exactly
// once, so an edit that moves them makes pinning fail instead of silently
// leaving a file behind.
func pinEdits(p Pin) []struct {
	file string
	re   *regexp.Regexp
	line string
} {
	type edit = struct {
		file string
		re   *regexp.Regexp
		line string
	}
	kust := filepath.Join("kustomize", "base", "kustomization.yaml")
	values := filepath.Join("helm", "rootscan", "values.yaml")
	return []edit{
		{kust, regexp.MustCompile(`(?m)^  - name: .*rootscan.*$`), "  - name: " + p.Repository},
		{kust, regexp.MustCompile(`(?m)^    newTag: .*$`), "    newTag: " + p.Tag},
		{kust, regexp.MustCompile(`(?m)^    digest: .*$`), "    digest: " + p.Digest},
		{values, regexp.MustCompile(`(?m)^  repository: .*$`), "  repository: " + p.Repository},
		{values, regexp.MustCompile(`(?m)^  tag: .*$`), `  tag: "` + p.Tag + `"`},
		{values, regexp.MustCompile(`(?m)^  digest: .*$`), `  digest: "` + p.Digest + `"`},
		{filepath.Join("helm", "rootscan", "Chart.yaml"), regexp.MustCompile(`(?m)^appVersion: .*$`), `appVersion: "` + p.Tag + `"`},
	}
}

// PinDeploy makes the manifests under deployDir run the image p names: it
// writes image.env and the lines of the kustomize base and the Helm chart
// that carry it.
func PinDeploy(deployDir string, p Pin) error {
	if _, err := ParsePin(p.Format()); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range pinEdits(p) {
		path := filepath.Join(deployDir, e.file)
		b, ok := files[path]
		if !ok {
			var err error
			if b, err = os.ReadFile(path); err != nil {
				return fmt.Errorf("pin: %w", err)
			}
		}
		if n := len(e.re.FindAllIndex(b, -1)); n != 1 {
			return fmt.Errorf("pin: %s has %d lines matching %s, want 1", path, n, e.re)
		}
		files[path] = e.re.ReplaceAllLiteral(b, []byte(e.line))
	}
	files[filepath.Join(deployDir, PinFile)] = p.Format()
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
	}
	return nil
}
