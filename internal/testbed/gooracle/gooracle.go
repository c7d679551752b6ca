// Package gooracle runs govulncheck as the oracle of rootscan's Go findings: it builds govulncheck and the vulndb
// indexer pinned in internal/tools, indexes the pinned golang.org/x/vulndb's data/osv, builds Go programs with a
// chosen toolchain and platform, and reads govulncheck's verdict on them. Tests and `make demo` only; builds and
// tools are cached under the test bed's cache directory, so only the first run pays for them.
package gooracle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnavailable wraps what keeps the oracle from running here (no go command, no module proxy, no old toolchain):
// tests skip on it unless integration tests are required.
var ErrUnavailable = errors.New("govulncheck oracle unavailable")

// Oracle is a ready govulncheck with its indexed database, and the builder of the programs it judges.
type Oracle struct {
	*Builder
	tools, govulndb string
	// OSVDir is the vulndb's data/osv, the records rootscan imports.
	OSVDir string
}

// Builder builds Go programs with a chosen toolchain into the test bed's cache. It is apart from Oracle for
// `make demo`, which builds an old program and has no use for govulncheck.
type Builder struct{ cache string }

// NewBuilder returns a Builder keeping its builds under cacheDir (the test bed's cache).
func NewBuilder(cacheDir string) (*Builder, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, fmt.Errorf("%w: no go command: %v", ErrUnavailable, err)
	}
	b := &Builder{cache: filepath.Join(cacheDir, "gooracle")}
	if err := os.MkdirAll(b.cache, 0o755); err != nil {
		return nil, fmt.Errorf("%w: cache: %v", ErrUnavailable, err)
	}
	return b, nil
}

// OSVDir returns the data/osv directory of the golang.org/x/vulndb version toolsDir's go.mod pins, downloaded
// through the module proxy unless the module cache holds it, and that version.
func OSVDir(ctx context.Context, toolsDir string) (dir, version string, err error) {
	out, err := goCmd(ctx, toolsDir, nil, "mod", "download", "-json", "golang.org/x/vulndb")
	var mod struct{ Dir, Version, Error string }
	jsonErr := json.NewDecoder(bytes.NewReader(out)).Decode(&mod) // out may end with the go command's stderr
	if err != nil && mod.Error != "" {
		return "", "", fmt.Errorf("%w: download golang.org/x/vulndb: %s", ErrUnavailable, mod.Error)
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: download golang.org/x/vulndb: %v\n%s", ErrUnavailable, err, out)
	}
	if jsonErr != nil || mod.Dir == "" {
		return "", "", fmt.Errorf("go mod download: %v\n%s", jsonErr, out)
	}
	return filepath.Join(mod.Dir, "data", "osv"), mod.Version, nil
}

// New prepares the oracle: toolsDir is internal/tools (its go.mod pins the tools and the database), cacheDir the
// test bed's cache.
func New(ctx context.Context, toolsDir, cacheDir string) (*Oracle, error) {
	b, err := NewBuilder(cacheDir)
	if err != nil {
		return nil, err
	}
	o := &Oracle{Builder: b}
	gomod, err := os.ReadFile(filepath.Join(toolsDir, "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("read tools module: %w", err)
	}
	o.tools = filepath.Join(o.cache, "tools-"+hashOf(gomod))
	err = cached(o.tools, func(tmp string) error {
		out, err := goCmd(ctx, toolsDir, nil, "build", "-o", tmp+"/", "golang.org/x/vuln/cmd/govulncheck", "golang.org/x/vulndb/cmd/indexdb")
		if err != nil {
			return fmt.Errorf("%w: build govulncheck and indexdb: %v\n%s", ErrUnavailable, err, out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var version string
	if o.OSVDir, version, err = OSVDir(ctx, toolsDir); err != nil {
		return nil, err
	}
	o.govulndb = filepath.Join(o.cache, "govulndb-"+version)
	err = cached(o.govulndb, func(tmp string) error {
		if out, err := exec.CommandContext(ctx, filepath.Join(o.tools, "indexdb"), "-vulns", o.OSVDir, "-out", tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("indexdb: %v\n%s", err, out)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// cached makes dir with fill (into a temporary sibling, renamed when complete) unless it exists. Test packages run
// in parallel and several of them ask for the same tools: an exclusive lock on dir+".lock" makes the others wait for
// the first build and then find it, instead of building it again into the same temporary directory.
func cached(dir string, fill func(tmp string) error) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	// On a cold cache the parent (e.g. gooracle/bin) does not exist yet: the lock file lives there.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); err == nil {
		return nil // built by another test process while this one waited
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, dir)
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// goCmd runs the go command in dir with the process's environment plus env and returns its standard output (with
// its standard error on failure).
func goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// Build is one build of a program: its source directory (go.mod, go.sum, main.go), the toolchain ("local" or
// "go1.22.0", fetched through the module proxy), the platform and extra go build flags.
type Build struct {
	Src, Toolchain, GOOS, GOARCH string
	Flags                        []string
}

// Name names the build in test names: program-os-arch-flags.
func (b Build) Name() string {
	n := filepath.Base(b.Src) + "-" + b.GOOS + "-" + b.GOARCH
	for _, f := range b.Flags {
		n += "-" + strings.Trim(strings.TrimPrefix(f, "-buildmode="), "-")
	}
	return n
}

// Build builds b, stripped (-ldflags=-s -w) or not, with CGO disabled, cached by its sources, toolchain, platform
// and flags, and returns the program's path, alone in its directory. A toolchain that cannot be fetched is
// ErrUnavailable.
func (bd *Builder) Build(ctx context.Context, b Build, strip bool) (string, error) {
	var parts [][]byte
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(b.Src, f))
		if err != nil {
			return "", err
		}
		parts = append(parts, data)
	}
	args := append([]string{"build"}, b.Flags...)
	name := b.Name()
	if strip {
		args = append(args, "-ldflags=-s -w")
		name += "-stripped"
	}
	parts = append(parts, []byte(b.Toolchain+" "+b.GOOS+" "+b.GOARCH+" "+strings.Join(args, " ")))
	dir := filepath.Join(bd.cache, "bin", name+"-"+hashOf(parts...))
	file := filepath.Base(b.Src)
	if b.GOOS == "windows" {
		file += ".exe"
	}
	err := cached(dir, func(tmp string) error {
		env := []string{"GOTOOLCHAIN=" + b.Toolchain, "GOOS=" + b.GOOS, "GOARCH=" + b.GOARCH, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly"}
		out, err := goCmd(ctx, b.Src, env, append(args, "-o", filepath.Join(tmp, file), ".")...)
		if err == nil {
			return nil
		}
		if b.Toolchain != "local" {
			return fmt.Errorf("%w: build with %s: %v\n%s", ErrUnavailable, b.Toolchain, err, out)
		}
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	})
	return filepath.Join(dir, file), err
}

// Finding is what the comparison keys on: the advisory and the module ("stdlib" for the standard library).
type Finding struct{ ID, Module string }

// Verdict is govulncheck's verdict on one program: its module-level findings and those it reports at symbol level
// (a vulnerable function is in the program).
type Verdict struct {
	Modules, Symbols map[Finding]bool
}

// Govulncheck runs govulncheck -mode=binary -scan=symbol on bin against the pinned database.
func (o *Oracle) Govulncheck(ctx context.Context, bin string) (Verdict, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(o.tools, "govulncheck"), "-mode=binary", "-scan=symbol", "-format=json",
		"-db=file://"+o.govulndb, bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Verdict{}, fmt.Errorf("govulncheck %s: %v\n%s", bin, err, stderr.Bytes())
	}
	v := Verdict{Modules: map[Finding]bool{}, Symbols: map[Finding]bool{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			Finding *struct {
				OSV   string `json:"osv"`
				Trace []struct {
					Module   string `json:"module"`
					Function string `json:"function"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return v, nil
		} else if err != nil {
			return Verdict{}, fmt.Errorf("govulncheck output: %w", err)
		}
		if msg.Finding == nil || len(msg.Finding.Trace) == 0 {
			continue
		}
		k := Finding{msg.Finding.OSV, msg.Finding.Trace[0].Module}
		v.Modules[k] = true
		if msg.Finding.Trace[0].Function != "" {
			v.Symbols[k] = true
		}
	}
}
