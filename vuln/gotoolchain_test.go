package vuln

import (
	"slices"
	"strings"
	"testing"
)

// TestMatchGoToolchain: the go command's advisories (package "toolchain": GO-2021-0068, cgo on Windows, fixed
// 1.15.7; GO-2022-0475/0476, cgo code execution, fixed 1.15.5) match the toolchain's programs at their Go version,
// and never a program that was merely built with that version (its "stdlib" matches the library's advisories).
func TestMatchGoToolchain(t *testing.T) {
	db := buildDB(t, "testdata/osv/go")
	got := matchLines(t, db, nil, golang("toolchain", "1.15.6"), golang("toolchain", "1.14.11"), golang("stdlib", "1.15.4"), golang("toolchain", "1.16.0"))
	want := []string{
		"GO-2021-0068 toolchain 1.14.11 UNKNOWN 0.0 fixed=1.14.14",
		"GO-2021-0068 toolchain 1.15.6 UNKNOWN 0.0 fixed=1.15.7",
		"GO-2022-0475 toolchain 1.14.11 UNKNOWN 0.0 fixed=1.14.12",
		"GO-2022-0476 toolchain 1.14.11 UNKNOWN 0.0 fixed=1.14.12",
	}
	var stdlibOnly []string
	for _, l := range got {
		if strings.Contains(l, " stdlib ") {
			stdlibOnly = append(stdlibOnly, l)
		}
	}
	got = slices.DeleteFunc(got, func(l string) bool { return strings.Contains(l, " stdlib ") })
	if !slices.Equal(got, want) {
		t.Errorf("toolchain findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range stdlibOnly {
		for _, id := range []string{"GO-2021-0068", "GO-2022-0475", "GO-2022-0476"} {
			if strings.HasPrefix(l, id+" ") {
				t.Errorf("a toolchain advisory matched a program's stdlib: %s", l)
			}
		}
	}
}
