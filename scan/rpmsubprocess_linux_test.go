package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/knqyf263/go-rpmdb/pkg/bdb"
)

// rpmFixtures are the real databases of rpm_test.go, one per format.
var rpmFixtures = []struct{ fixture, path string }{
	{"rpm/centos7-plain.Packages.gz", "var/lib/rpm/Packages"},
	{"rpm/sle15-bci.Packages.db.gz", "var/lib/rpm/Packages.db"},
	{"rpm/fedora35.rpmdb.sqlite.gz", "usr/lib/sysimage/rpm/rpmdb.sqlite"},
}

// writeDB puts a database where a parser can open it, as readDB's private copy would be.
func writeDB(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rpmdb")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// requireGone asserts that a child and its process group are gone (reaped, not a zombie).
func requireGone(t *testing.T, pid int) {
	t.Helper()
	if pid == 0 {
		t.Fatal("child never started")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d still exists: kill(0) = %v", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists: kill(0) = %v", pid, err)
	}
}

// The three real databases give the same records out of process as in process (the fields the analyzers read), and
// the analyzers built WithRPMParser give the same packages, integrity findings and errors.
func TestRPMSubprocessSameAsInProcess(t *testing.T) {
	sub := &RPMSubprocess{Timeout: time.Minute}
	for _, tc := range rpmFixtures {
		t.Run(tc.path, func(t *testing.T) {
			db := gunzipTestdata(t, tc.fixture)
			path := writeDB(t, db)
			in, err := InProcessRPM{}.ParseRPMDB(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			sub := &RPMSubprocess{Timeout: time.Minute, started: func(p int) { pid = p }}
			out, err := sub.ParseRPMDB(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			requireGone(t, pid)
			if len(in) == 0 || len(out) != len(in) {
				t.Fatalf("%d records out of process, %d in process", len(out), len(in))
			}
			for i := range in {
				if want := rpmRecordForParent(in[i]); !reflect.DeepEqual(out[i], want) {
					t.Fatalf("record %d (%s) differs:\nout %+v\nin  %+v", i, in[i].Name, out[i], want)
				}
			}
			files := 0
			for _, p := range out {
				files += len(p.BaseNames)
			}
			t.Logf("%d packages, %d files", len(out), files)
		})
	}
	for _, tc := range rpmFixtures {
		t.Run("analyzer/"+tc.path, func(t *testing.T) {
			fsys := fstest.MapFS{"etc/os-release": file([]byte("ID=sles\n")), tc.path: file(gunzipTestdata(t, tc.fixture))}
			in := Run(context.Background(), fsys, []Analyzer{NewOSRelease(), NewRPM(), NewUnownedFiles()})
			out := Run(context.Background(), fsys, []Analyzer{NewOSRelease(), NewRPM(WithRPMParser(sub)), NewUnownedFiles(WithRPMParser(sub))})
			if len(out.Errors) != 0 || len(out.Packages) == 0 || !reflect.DeepEqual(out, in) {
				t.Fatalf("out of process: %d packages, errors %v; in process: %d packages, errors %v", len(out.Packages), out.Errors, len(in.Packages), in.Errors)
			}
		})
	}
	// The integrity check reads file lists, digests, modes and flags through the child.
	fsys := centos7Root(t)
	fsys["etc/centos-release-upstream"] = file([]byte("tampered\n"))
	in := runRPMIntegrity(t, fsys, NewRPMIntegrity(), "centos-release", "libselinux")
	out := runRPMIntegrity(t, fsys, NewRPMIntegrity(WithRPMParser(sub)), "centos-release", "libselinux")
	if len(out.Integrity) != 10 || !reflect.DeepEqual(findingLines(out.Integrity), findingLines(in.Integrity)) || len(out.Errors) != 0 {
		t.Fatalf("integrity out of process:\n%s\nin process:\n%s\nerrors %v", strings.Join(findingLines(out.Integrity), "\n"), strings.Join(findingLines(in.Integrity), "\n"), out.Errors)
	}
}

// bdbDamaged returns the centos:7 database with one of the damages rpmPreflight refuses (see
// TestRPMPreflightRefusesLoops); go-rpmdb itself panics or loops on them, in a goroutine of its own.
func bdbDamaged(t *testing.T, kind string) []byte {
	t.Helper()
	db := gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")
	off, first, ps := bdbFirstValue(t, db)
	switch kind {
	case "panic": // a value offset past the page: index out of range in bdb.(*BerkeleyDB).Read
		binary.LittleEndian.PutUint16(db[off-4-(off-4)%ps+bdb.PageHeaderSize+bdb.HashIndexEntrySize:], uint16(ps))
	case "spin": // a value whose overflow chain starts at a page that is no overflow page: retried forever
		binary.LittleEndian.PutUint32(db[off:], 1<<20)
	case "grow": // an overflow page that links to itself: the value grows forever
		binary.LittleEndian.PutUint32(db[int(first)*ps+16:], first)
	default:
		t.Fatalf("unknown damage %q", kind)
	}
	return db
}

// A database that panics go-rpmdb in its own goroutine (which would end an in-process scanner: no recover reaches
// it) ends only the child; the parent reports it as the file's error and the other analyzers carry on.
func TestRPMSubprocessSurvivesPanic(t *testing.T) {
	db := bdbDamaged(t, "panic")
	var pid int
	sub := &RPMSubprocess{Timeout: time.Minute, preflightOff: true, started: func(p int) { pid = p }}
	a := &rpmAnalyzer{maxSize: rpmMaxDBSize, tempDir: t.TempDir(), parser: sub}
	out := Run(context.Background(), fstest.MapFS{
		"var/lib/rpm/Packages": file(db),
		apkInstalledPath:       file([]byte("P:musl\nV:1.2.5-r0\n")),
	}, []Analyzer{NewOSRelease(), a, NewApk()})
	requireGone(t, pid)
	if len(out.Errors) != 1 || out.Errors[0].Analyzer != "rpm" || out.Errors[0].Path != "var/lib/rpm/Packages" {
		t.Fatalf("errors %v", out.Errors)
	}
	const want = "rpm parser process: crashed (exit 2): panic: runtime error: index out of range [4096] with length 4096"
	if out.Errors[0].Err != want {
		t.Fatalf("error %q, want %q", out.Errors[0].Err, want)
	}
	if len(out.Packages) != 1 || out.Packages[0].Name != "musl" {
		t.Errorf("packages %v", pkgLines(out.Packages))
	}
	if ents, _ := os.ReadDir(a.tempDir); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}

	// With the preflight on (the default), the child refuses the file and says why: exit 1, the message passed on.
	sub = &RPMSubprocess{Timeout: time.Minute}
	_, err := sub.ParseRPMDB(context.Background(), writeDB(t, db))
	if err == nil || errors.Is(err, errRPMChild) || !strings.HasPrefix(err.Error(), "damaged rpm database: page ") || !strings.Contains(err.Error(), "outside the page") {
		t.Fatalf("preflight: %v", err)
	}
}

// A database on which go-rpmdb spins forever: the wall-clock timeout kills the child, the CPU limit kills it on its
// own, and a cancelled context kills it; each time the process and its group are gone when ParseRPMDB returns.
func TestRPMSubprocessKillsSpinningParser(t *testing.T) {
	path := writeDB(t, bdbDamaged(t, "spin"))
	for name, tc := range map[string]struct {
		sub    RPMSubprocess
		cancel time.Duration
		want   string
	}{
		"timeout":  {RPMSubprocess{Timeout: time.Second, MaxCPU: time.Minute}, 0, "parse rpm database: gave up after the time limit (1s): rpm parser process killed"},
		"cpu":      {RPMSubprocess{Timeout: time.Minute, MaxCPU: time.Second}, 0, "rpm parser process: killed at its CPU time limit (1s)"},
		"canceled": {RPMSubprocess{Timeout: time.Minute, MaxCPU: time.Minute}, time.Second, context.Canceled.Error()},
	} {
		t.Run(name, func(t *testing.T) {
			var pid int
			sub := tc.sub
			sub.preflightOff, sub.started = true, func(p int) { pid = p }
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			start := time.Now()
			pkgs, err := sub.ParseRPMDB(ctx, path)
			elapsed := time.Since(start)
			requireGone(t, pid)
			if err == nil || err.Error() != tc.want || len(pkgs) != 0 {
				t.Fatalf("%d packages, error %v, want %q", len(pkgs), err, tc.want)
			}
			// Killed about when the limit was reached: not the minute of the other bound.
			if elapsed > 30*time.Second {
				t.Errorf("took %v", elapsed)
			}
			t.Logf("%v after %v", err, elapsed)
		})
	}
}

// A database on which go-rpmdb allocates without end meets the child's RLIMIT_AS, and the output bound stops a
// child that writes more than the parent reads.
func TestRPMSubprocessMemoryAndOutputLimits(t *testing.T) {
	var pid int
	sub := &RPMSubprocess{Timeout: time.Minute, MaxMemory: 512 << 20, preflightOff: true, started: func(p int) { pid = p }}
	_, err := sub.ParseRPMDB(context.Background(), writeDB(t, bdbDamaged(t, "grow")))
	requireGone(t, pid)
	if err == nil || !strings.HasPrefix(err.Error(), "rpm parser process: out of memory (limit 536870912 bytes): fatal error: ") {
		t.Fatalf("error %v", err)
	}
	t.Log(err)

	sub = &RPMSubprocess{Timeout: time.Minute, MaxOutput: 64 << 10, started: func(p int) { pid = p }}
	_, err = sub.ParseRPMDB(context.Background(), writeDB(t, gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")))
	requireGone(t, pid)
	if err == nil || err.Error() != "rpm parser process: output larger than 65536 bytes" {
		t.Fatalf("error %v", err)
	}
}

// A child that cannot start is an error, not a crash.
func TestRPMSubprocessNoExecutable(t *testing.T) {
	sub := &RPMSubprocess{Executable: filepath.Join(t.TempDir(), "missing")}
	_, err := sub.ParseRPMDB(context.Background(), writeDB(t, []byte("x")))
	if err == nil || !strings.HasPrefix(err.Error(), "rpm parser process: start ") {
		t.Fatalf("error %v", err)
	}
}

func TestChildFailure(t *testing.T) {
	for in, want := range map[string]string{
		"":     "no message",
		"\n\n": "no message",
		"bad slot magic 0\npanic: runtime error: index out of range [5] with length 4\n\ngoroutine 7 [running]:\n": "panic: runtime error: index out of range [5] with length 4",
		"fatal error: runtime: out of memory\n\nruntime stack:\n":                                                  "fatal error: runtime: out of memory",
		"something else\nand more\n": "something else",
	} {
		if got := childFailure(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{max: 4}
	if n, err := b.Write([]byte("abc")); n != 3 || err != nil || b.over {
		t.Fatalf("%d %v %v", n, err, b.over)
	}
	if n, err := b.Write([]byte("def")); n != 3 || err != nil || !b.over || b.buf.String() != "abcd" {
		t.Fatalf("drop: %d %v %v %q", n, err, b.over, b.buf.String())
	}
	b = &cappedBuffer{max: 4, stop: true}
	if n, err := b.Write([]byte("abcdef")); n != 4 || !errors.Is(err, errRPMOutputLimit) || !b.over || !bytes.Equal(b.buf.Bytes(), []byte("abcd")) {
		t.Fatalf("stop: %d %v %v %q", n, err, b.over, b.buf.String())
	}
}

// BenchmarkRPMParse measures what the child costs per database: in process against out of process (start of the
// re-executed binary, limits, parse, gob encode and decode) on the three real databases.
func BenchmarkRPMParse(b *testing.B) {
	for _, tc := range rpmFixtures {
		path := writeDB(b, gunzipTestdata(b, tc.fixture))
		for _, p := range []struct {
			name   string
			parser RPMParser
		}{{"in-process", InProcessRPM{}}, {"subprocess", &RPMSubprocess{}}} {
			b.Run(filepath.Base(tc.path)+"/"+p.name, func(b *testing.B) {
				for b.Loop() {
					pkgs, err := p.parser.ParseRPMDB(context.Background(), path)
					if err != nil || len(pkgs) == 0 {
						b.Fatalf("%d packages, %v", len(pkgs), err)
					}
				}
			})
		}
	}
}

// FuzzRPMSubprocess runs go-rpmdb without the preflight on arbitrary databases, in the child: whatever go-rpmdb does
// (panic in its goroutines, loop, allocate), ParseRPMDB returns and leaves no process behind. With -preflight it
// is also how damage the preflight should refuse is found: a child crash on an input the preflight passes.
func FuzzRPMSubprocess(f *testing.F) {
	f.Add(gunzipTestdata(f, "rpm/sle15-bci.Packages.db.gz")[:8192], false)
	f.Add(gunzipTestdata(f, "rpm/centos7-plain.Packages.gz")[:16384], false)
	f.Add(gunzipTestdata(f, "rpm/centos7-plain.Packages.gz")[:16384], true)
	f.Fuzz(func(t *testing.T, data []byte, preflight bool) {
		var pid int
		sub := &RPMSubprocess{Timeout: 5 * time.Second, MaxMemory: 256 << 20, preflightOff: !preflight, started: func(p int) { pid = p }}
		_, err := sub.ParseRPMDB(context.Background(), writeDB(t, data))
		requireGone(t, pid)
		if preflight && errors.Is(err, errRPMChild) {
			t.Fatalf("the preflight passed a database that ended the child: %v", err)
		}
	})
}
