package node

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseMapsLine(t *testing.T) {
	tests := []struct {
		line, want string
		ok         bool
	}{
		{"7f2a1c000000-7f2a1c028000 r--p 00000000 00:2a 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6", "", false},
		{"7f2a1c028000-7f2a1c1bd000 r-xp 00028000 00:2a 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", true},
		{"55d0c0a00000-55d0c0a04000 r-xp 00002000 fd:01 99 /opt/my app/bin (deleted)", "/opt/my app/bin", true},
		{"7ffd5a3f2000-7ffd5a3f4000 r-xp 00000000 00:00 0                          [vdso]", "", false},
		{"7f2a1c000000-7f2a1c028000 rwxp 00000000 00:00 0 ", "", false},
		{"garbage", "", false},
		{"a b", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := parseMapsLine(tt.line)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMapsLine(%q) = %q, %v; want %q, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseMapsLine(f *testing.F) {
	f.Add("7f2a1c028000-7f2a1c1bd000 r-xp 00028000 00:2a 1234 /usr/lib/libc.so.6")
	f.Add("x x x x x")
	f.Fuzz(func(t *testing.T, line string) {
		if p, ok := parseMapsLine(line); ok && (!strings.HasPrefix(p, "/") || !strings.Contains(line, p)) {
			t.Errorf("parseMapsLine(%q) = %q", line, p)
		}
	})
}

func FuzzPasswdName(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/sh\n"), uint32(0))
	f.Add([]byte("a:b:1\n::0:\n"), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, uid uint32) {
		if name := passwdName(b, uid); name != "" && (len(name) > 64 || strings.ContainsAny(name, ": \n")) {
			t.Errorf("passwdName = %q", name)
		}
	})
}

// TestRunningExecutables reads this test process's own maps: its executable (mapped r-x) is there, read-only
// mappings are not.
func TestRunningExecutables(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := runningExecutables("/proc", os.Getpid())
	if !slices.Contains(got, exe) {
		t.Errorf("running executables %v lack this test binary %s", got, exe)
	}
	if runningExecutables("/proc", 0) != nil || runningExecutables(t.TempDir(), os.Getpid()) != nil {
		t.Error("no pid or no /proc gave paths")
	}
}
