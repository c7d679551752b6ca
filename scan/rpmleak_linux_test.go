package scan

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// copyDescriptors lists this process's open descriptors of files under dir (removed ones included), with the size of
// each file.
func copyDescriptors(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]int64{}
	for _, e := range ents {
		fd := filepath.Join("/proc/self/fd", e.Name())
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue // the ReadDir's own descriptor is gone by now
		}
		fi, err := os.Stat(fd)
		if err != nil {
			t.Fatal(err)
		}
		open[e.Name()+" "+target] = fi.Size()
	}
	return open
}

// sqliteWithoutPackages is an sqlite database without rpm's Packages table.
func sqliteWithoutPackages(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db.sqlite")
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE Names (name TEXT)"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// go-rpmdb leaves the file it opened open when its Open refuses a file (and, through ndb.Open, on every Berkeley DB),
// and its sqlite reader blocks forever when the query fails. Left alone in a fuzz worker, thousands of descriptors
// of removed copies piled up until the garbage collector or the process's exit closed them, and each close of a
// file whose blocks had reached the disk freed them with a synchronous discard (the root is mounted -o discard):
// seconds of stalls, and a worker that took longer to exit than the fuzzing engine waits. After Analyze, no
// descriptor may keep a copy's data on disk, a file go-rpmdb would refuse is never opened by it, and no reader
// goroutine is left behind.
func TestRPMLeavesNoDescriptorOrReader(t *testing.T) {
	// The garbage collector closes leaked *os.File on its own schedule; off, a leak stays visible.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	centos := gunzipTestdata(t, "rpm/centos7-plain.Packages.gz")
	ndb := gunzipTestdata(t, "rpm/sle15-bci.Packages.db.gz")
	badPageSize := bytes.Clone(centos[:8192])
	binary.LittleEndian.PutUint32(badPageSize[20:], 3000) // the metadata page's page size
	badNDB := bytes.Clone(ndb[:8192])
	binary.LittleEndian.PutUint32(badNDB[4:], 7) // the ndb version
	for name, tc := range map[string]struct {
		path    string
		data    []byte
		refused bool // go-rpmdb's Open or first query would refuse it: go-rpmdb must not see it
	}{
		"bdb":                  {"var/lib/rpm/Packages", centos, false},
		"bdb truncated":        {"var/lib/rpm/Packages", centos[:len(centos)/2], false},
		"bdb bad page size":    {"var/lib/rpm/Packages", badPageSize, true},
		"ndb bad version":      {"var/lib/rpm/Packages.db", badNDB, true},
		"ndb truncated slots":  {"var/lib/rpm/Packages.db", ndb[:1024], true},
		"sqlite no packages":   {"var/lib/rpm/rpmdb.sqlite", sqliteWithoutPackages(t), true},
		"zeros":                {"var/lib/rpm/rpmdb.sqlite", make([]byte, 16), true},
		"text":                 {"var/lib/rpm/Packages", []byte("this is not a database\n"), true},
		"empty":                {"var/lib/rpm/Packages", nil, true},
		"junk of a page":       {"var/lib/rpm/Packages", bytes.Repeat([]byte{0x5a}, 4096), true},
		"ndb header, no slots": {"var/lib/rpm/Packages.db", ndb[:40], true},
	} {
		t.Run(name, func(t *testing.T) {
			goroutines := runtime.NumGoroutine()
			a := &rpmAnalyzer{maxSize: rpmMaxDBSize, timeout: time.Minute, tempDir: t.TempDir()}
			out := analyze(t, a, fstest.MapFS{tc.path: file(tc.data)})
			if tc.refused && (len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Err, "rpm database")) {
				t.Errorf("errors %v", out.Errors)
			}
			open := copyDescriptors(t, a.tempDir)
			for fd, size := range open {
				if size != 0 {
					t.Errorf("descriptor %s keeps %d bytes of a removed copy", fd, size)
				}
			}
			if tc.refused && len(open) != 0 {
				t.Errorf("go-rpmdb opened a file it refuses: %v", open)
			}
			if ents, _ := os.ReadDir(a.tempDir); len(ents) != 0 {
				t.Errorf("temp files left: %v", ents)
			}
			// A reader that ends does so right after the parse; one blocked on a send never does.
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if tc.refused && runtime.NumGoroutine() > goroutines {
				t.Errorf("%d goroutines left behind", runtime.NumGoroutine()-goroutines)
			}
		})
	}
}
