package report

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
)

// GoBinary is one Go program of a root with what matching needs beyond its modules (which are in Packages, the
// program's path among their Locations).
type GoBinary struct {
	Path string `json:"path"`
	// GOOS and GOARCH are the build settings the program was built with; advisories limited to other platforms
	// (ecosystem_specific.imports[].goos/goarch) do not apply to it. Empty when the build info does not say.
	GOOS   string `json:"goos,omitempty"`
	GOARCH string `json:"goarch,omitempty"`
	// Symbols are the functions compiled in; nil when the program gives nothing to decide reachability on.
	Symbols *GoSymbols `json:"symbols,omitempty"`
	// SymbolsFrom says how the functions were found: "symtab" (the symbol table locates go:func.*), "pclntab" (a
	// stripped program: the runtime's function table and its module data). Empty with Symbols nil.
	SymbolsFrom string `json:"symbolsFrom,omitempty"`
}

// GoSymbols is the set of functions compiled into a Go program, including those only inlined into others, with
// the packages they belong to and the modules of those packages. Entries are 64-bit FNV-1a hashes, sorted: kubelet's
// ~120,000 names cost 1 MB instead of 8, and the set is kept with the report (the daemon re-matches cached reports
// when its database changes) and written with it. A false "present" needs a 64-bit collision among a program's
// names, about one in 10^9 programs.
type GoSymbols struct {
	keys []uint64
}

// GoSymbolKey is the key of function name (govulncheck's spelling: "Func", "Type.Method", pointer receivers
// without "(*)") of package pkg (import path; "main" replaced by the main package's path).
func GoSymbolKey(pkg, name string) uint64 { return goKey('s', pkg, name) }

// GoPackageKey is the key saying package pkg has code in the program.
func GoPackageKey(pkg string) uint64 { return goKey('p', pkg, "") }

// GoModuleKey is the key saying a package of module mod ("stdlib" for the standard library) has code in the
// program.
func GoModuleKey(mod string) uint64 { return goKey('m', mod, "") }

func goKey(kind byte, a, b string) uint64 {
	h := fnv.New64a()
	h.Write([]byte{kind, 0})
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(b))
	return h.Sum64()
}

// NewGoSymbols builds a set from keys (GoSymbolKey, GoPackageKey, GoModuleKey); keys is sorted in place and kept.
func NewGoSymbols(keys []uint64) *GoSymbols {
	slices.Sort(keys)
	return &GoSymbols{keys: slices.Clip(slices.Compact(keys))}
}

// Has reports whether key is in the set.
func (s *GoSymbols) Has(key uint64) bool {
	if s == nil {
		return false
	}
	_, ok := slices.BinarySearch(s.keys, key)
	return ok
}

// Len is the number of keys.
func (s *GoSymbols) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// MarshalJSON writes the keys as one base64 string of little-endian words.
func (s GoSymbols) MarshalJSON() ([]byte, error) {
	b := make([]byte, 8*len(s.keys))
	for i, k := range s.keys {
		binary.LittleEndian.PutUint64(b[8*i:], k)
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(b))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *GoSymbols) UnmarshalJSON(data []byte) error {
	var str string
	if err := json.Unmarshal(data, &str); err != nil {
		return fmt.Errorf("Go symbols: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(str)
	if err != nil {
		return fmt.Errorf("Go symbols: %w", err)
	}
	if len(b)%8 != 0 {
		return errors.New("Go symbols: length is not a multiple of 8")
	}
	keys := make([]uint64, len(b)/8)
	for i := range keys {
		keys[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	*s = *NewGoSymbols(keys)
	return nil
}
