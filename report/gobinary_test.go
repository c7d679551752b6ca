package report

import (
	"encoding/json"
	"testing"
)

// TestGoSymbolsJSON: the set survives the round trip through JSON (the daemon's image cache), and a damaged
// value is an error.
func TestGoSymbolsJSON(t *testing.T) {
	in := GoBinary{Path: "usr/bin/x", GOOS: "linux", GOARCH: "arm64",
		Symbols: NewGoSymbols([]uint64{GoSymbolKey("net/http", "Client.Do"), GoPackageKey("net/http"), GoModuleKey("stdlib"), 7, 7})}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out GoBinary
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Symbols.Len() != 4 || !out.Symbols.Has(GoSymbolKey("net/http", "Client.Do")) || !out.Symbols.Has(7) ||
		out.Symbols.Has(GoSymbolKey("net/http", "Client.Get")) || out.GOARCH != "arm64" {
		t.Errorf("round trip: %+v (%d keys) from %s", out, out.Symbols.Len(), b)
	}
	if GoSymbolKey("a/b", "c") == GoSymbolKey("a", "b/c") || GoPackageKey("x") == GoModuleKey("x") {
		t.Error("keys of different names collide")
	}
	for _, bad := range []string{`{"symbols":"!!"}`, `{"symbols":"AAAA"}`, `{"symbols":3}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	var none GoBinary
	if b, _ := json.Marshal(none); string(b) != `{"path":""}` {
		t.Errorf("empty GoBinary: %s", b)
	}
}
