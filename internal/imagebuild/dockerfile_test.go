package imagebuild

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case
	Args string
}

// parseDockerfile splits a Dockerfile into stages of instructions; each stage starts with its FROM.
func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		cur = ""
		if in.Cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", path, in.Cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

// words splits on spaces outside double quotes and drops the quotes.
func words(s string) []string {
	var out []string
	var w strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, w.String())
			}
			w.Reset()
			inWord = false
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// checkDockerfile holds the Dockerfile to the Go builder: its build stage uses the Go of go.mod and runs the
// builder's -rootfs mode, its final stage is scratch plus that rootfs and nothing else, with the builder's config;
// and the rootfs the builder writes has the files, modes, owners and contents of the image's layers.
func checkDockerfile(t *testing.T, img *ociimage.Image, layers map[string]layoutFile) {
	stages := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want build and final", len(stages))
	}
	checkBuildStage(t, stages[0])
	got := map[string][]string{}
	for _, in := range stages[1] {
		got[in.Cmd] = append(got[in.Cmd], in.Args)
	}
	cfg := Config(nil)
	var env []string
	for _, e := range got["ENV"] {
		env = append(env, words(e)...)
	}
	entry, _ := json.Marshal(cfg.Entrypoint)
	want := map[string][]string{
		"FROM":       {"scratch"},
		"COPY":       {"--from=build /rootfs/ /"},
		"ARG":        {"VERSION=dev"},
		"USER":       {cfg.User},
		"WORKDIR":    {cfg.WorkingDir},
		"EXPOSE":     slices.Sorted(maps.Keys(cfg.ExposedPorts)),
		"STOPSIGNAL": {cfg.StopSignal},
		"ENTRYPOINT": {string(entry)},
		"ENV":        got["ENV"], // compared word by word above
		"LABEL":      got["LABEL"],
	}
	if !slices.Equal(env, cfg.Env) {
		t.Errorf("Dockerfile ENV %v, builder %v", env, cfg.Env)
	}
	labels := map[string]string{}
	for _, l := range got["LABEL"] {
		for _, kv := range words(l) {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = v
		}
	}
	wantLabels := Annotations(Source{Version: "$VERSION"}) // revision and created are unknown to docker
	if !maps.Equal(labels, wantLabels) {
		t.Errorf("Dockerfile LABELs %v, builder %v", labels, wantLabels)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("final stage %s %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("final stage has %s %v, which the Go builder does not do", k, got[k])
		}
	}
	checkRootFS(t, img, layers)
}

// checkBuildStage: the Go of the build stage is go.mod's, and it runs the builder into /rootfs.
func checkBuildStage(t *testing.T, stage []instruction) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "golang:" + mod.Go.Version + "-" + debianCodename + " AS build"; stage[0].Args != want {
		t.Errorf("build stage FROM %q, want %q (go.mod's Go, the pinned package's Debian)", stage[0].Args, want)
	}
	runs := 0
	for _, in := range stage {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go run ./internal/imagebuild/cmd/mkimage ") &&
			strings.Contains(in.Args, " -rootfs /rootfs") {
			runs++
		}
	}
	if runs != 1 {
		t.Errorf("build stage runs the Go builder into /rootfs %d times, want once", runs)
	}
}

// checkRootFS writes the rootfs as the Dockerfile's build stage does and compares it, file by file, with the
// layers `make image` wrote: what COPY --from=build /rootfs/ / puts in the final stage.
func checkRootFS(t *testing.T, img *ociimage.Image, layers map[string]layoutFile) {
	dir := t.TempDir()
	if err := WriteRootFS(img, dir); err != nil {
		t.Fatal(err)
	}
	got := map[string]layoutFile{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		f := layoutFile{Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid), Type: tar.TypeDir}
		if fi.Mode().IsRegular() {
			f.Type = tar.TypeReg
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f.Sum = sha256.Sum256(b)
		}
		got[filepath.ToSlash(rel)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range layers {
		if g, ok := got[p]; !ok || g != want {
			t.Errorf("rootfs %s: %+v (present %v), the image has %+v", p, g, ok, want)
		}
	}
	for p := range got {
		if _, ok := layers[p]; !ok {
			t.Errorf("rootfs has %s, the image does not", p)
		}
	}
}
