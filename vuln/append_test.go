package vuln

import (
	"context"
	"slices"
	"testing"
)

// TestImportAppend: a second build that first takes in the existing database keeps its advisories and sources and
// adds the new ones; the result matches like one import of everything.
func TestImportAppend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	build := func(appendDB bool, paths ...string) Info {
		t.Helper()
		b, err := NewBuilder(dir)
		if err != nil {
			t.Fatal(err)
		}
		if appendDB {
			if _, err := b.ImportExisting(ctx, dir); err != nil {
				b.Abort()
				t.Fatal(err)
			}
		}
		for _, p := range paths {
			if _, err := b.ImportPath(ctx, p, Limits{}); err != nil {
				b.Abort()
				t.Fatal(err)
			}
		}
		info, err := b.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	// Appending to a directory without a database is an ordinary import.
	first := build(true, "testdata/osv/debian")
	if first.Advisories != 6 {
		t.Fatalf("first build: %d advisories, want 6", first.Advisories)
	}
	info := build(true, "testdata/osv/nuget", "testdata/osv/debian/DSA-5514-1.json")
	if info.Advisories != 9 || len(info.Sources) != 3 {
		t.Fatalf("appended: %d advisories, %d sources (%+v), want 9 and 3", info.Advisories, len(info.Sources), info.Sources)
	}
	var ecos []string
	for _, e := range info.Ecosystems {
		ecos = append(ecos, e.Ecosystem)
	}
	if !slices.Equal(ecos, []string{"Debian", "NuGet"}) {
		t.Errorf("ecosystems %v", ecos)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := matchLines(t, db, debian12, deb("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2"), langPkg("NuGet", "System.Text.Json", "8.0.4"))
	want := []string{
		"DEBIAN-CVE-2010-4756 libc6 2.36-9+deb12u2 LOW 0.0 fixed=",
		"DEBIAN-CVE-2019-1010022 libc6 2.36-9+deb12u2 LOW 0.0 fixed=",
		"DSA-5514-1 libc6 2.36-9+deb12u2 HIGH 0.0 fixed=2.36-9+deb12u3",
		"GHSA-8g4q-xg66-9fp4 System.Text.Json 8.0.4 HIGH 7.5 fixed=8.0.5",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	// Without --append the same import replaces the database.
	if info := build(false, "testdata/osv/nuget"); info.Advisories != 3 {
		t.Errorf("replace: %d advisories, want 3", info.Advisories)
	}
}
