package inspec

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// Checksum is the profile's sha256 as InSpec computes it (Inspec::Profile#sha256), so HDF from rootscan and from
// InSpec name the same profile alike. InSpec hashes a list of (name, content) entries: every controls/**.rb,
// libraries/**.rb and files/** file of the profile by its path in the profile, the text of inspec.yml under the
// name "inspec.yml", and under the name "inspec.lock.deps" the YAML dump of a map from each locked dependency's
// name to its own checksum ("--- {}\n" without dependencies). The entries are sorted by name, and each one feeds
// name, a NUL byte, content and another NUL byte into one SHA-256, hex-encoded.
//
// deps maps dependency names to their checksums; they are written in name order (InSpec writes them in its lock
// file's order, which `inspec vendor` also sorts by name).
func Checksum(files map[string][]byte, deps map[string]string) string {
	type entry struct {
		name string
		data []byte
	}
	var entries []entry
	for name, data := range files {
		if isRuby(name, "controls/") || isRuby(name, "libraries/") || strings.HasPrefix(name, "files/") {
			entries = append(entries, entry{name, data})
		}
	}
	entries = append(entries, entry{"inspec.yml", files["inspec.yml"]}, entry{"inspec.lock.deps", []byte(yamlDumpDeps(deps))})
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	h := sha256.New()
	for _, e := range entries {
		h.Write([]byte(e.name))
		h.Write([]byte{0})
		h.Write(e.data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// yamlDumpDeps writes the map as Ruby's YAML.dump writes a hash of plain strings.
func yamlDumpDeps(deps map[string]string) string {
	if len(deps) == 0 {
		return "--- {}\n"
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("---\n")
	for _, n := range names {
		b.WriteString(n + ": " + deps[n] + "\n")
	}
	return b.String()
}
