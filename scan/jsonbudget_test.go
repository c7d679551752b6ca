package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// jsonElements counts the elements of every array and object of a valid JSON text with the standard decoder.
func jsonElements(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // valid JSON may hold numbers no float64 holds (1e700)
	n := 0
	var stack []bool // per open container: whether it is an object (its keys are tokens too)
	key := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		inObject := len(stack) > 0 && stack[len(stack)-1]
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			key = len(stack) > 0 && stack[len(stack)-1]
			continue
		}
		if inObject && key {
			key = false // a member's name, its value follows
			continue
		}
		if len(stack) > 0 {
			n++
		}
		key = inObject
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, d == '{')
			key = d == '{'
		}
	}
}

func TestCheckJSONValues(t *testing.T) {
	for in, elements := range map[string]int{
		`[]`: 0, `{}`: 0, `[1]`: 1, `[1,2,3]`: 3, `{"a":[1,{"b":2}],"c":"x,[{"}`: 5, `"a,b,{"`: 0, `"\",["`: 0, `[[],[]]`: 2,
	} {
		if got := jsonElements(t, []byte(in)); got != elements {
			t.Errorf("%s: decoder counts %d, want %d", in, got, elements)
		}
		if err := checkJSONValues([]byte(in), elements-1); elements > 0 && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %d elements pass a bound of %d", in, elements, elements-1)
		}
	}
	if err := checkJSONValues([]byte(`{"a":[1,2,3]}`), 5); err != nil {
		t.Errorf("4 elements under a bound of 5: %v", err)
	}
}

// hostileJSON is a document of about size bytes that decodes into one small value per few bytes.
func hostileJSON(prefix, member, suffix string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(prefix)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.ReplaceAll(member, "N", string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676%26))+string(rune('a'+i/17576%26))+string(rune('a'+i/456976%26))))
	}
	b.WriteString(suffix)
	return b.Bytes()
}

// TestJSONParsersBounded: each JSON parser, given 16 MiB (8 MiB for Rust audit data) of the smallest values its
// format allows, refuses it having allocated a few MiB: before the value check each of these cost hundreds of MiB.
func TestJSONParsersBounded(t *testing.T) {
	cases := []struct {
		name  string
		data  []byte
		parse func([]byte) error
	}{
		{"npm-lock", hostileJSON(`{"lockfileVersion":3,"packages":{`, `"N":{}`, `}}`, npmMaxLockSize-16),
			func(d []byte) error { _, err := parseNpmLock(d); return err }},
		{"npm-lock-v1", hostileJSON(`{"lockfileVersion":1,"dependencies":{`, `"N":{}`, `}}`, npmMaxLockSize-16),
			func(d []byte) error { _, err := parseNpmLock(d); return err }},
		{"npm-manifest", hostileJSON(`{`, `"N":0`, `}`, npmMaxManifestSize-16),
			func(d []byte) error { _, err := parseNpmManifest(d); return err }},
		{"composer", hostileJSON(`[`, `{}`, `]`, composerMaxInstalledSize-16),
			func(d []byte) error { _, err := parseComposerInstalled(d); return err }},
		{"dotnet", hostileJSON(`{"libraries":{`, `"N":{}`, `}}`, dotnetMaxDepsSize-16),
			func(d []byte) error { _, err := parseDepsJSON(d); return err }},
		{"rust", rustCompress(t, hostileJSON(`{"packages":[`, `{"dependencies":[0,0,0,0,0,0,0,0,0,0,0,0,0,0]}`, `]}`, rustAuditMaxJSON-100)),
			func(d []byte) error { _, err := parseRustAudit(d, rustAuditMaxJSON); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := c.parse(c.data)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes in, %d KiB allocated: %v", len(c.data), alloc>>10, err)
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("err = %v, want ErrTooLarge", err)
			}
			// The Rust case decompresses its 8 MiB first (io.ReadAll: about twice that allocated); the others only
			// scan what is already in memory.
			if alloc > 24<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}

// FuzzCheckJSONValues: for valid JSON, a bound below the elements the decoder finds always fails.
func FuzzCheckJSONValues(f *testing.F) {
	for _, s := range []string{`[]`, `{"a":[1,{"b":"c,\"["}]}`, `[[[[]]]]`, `{"packages":{"a":{},"b":{"x":[1,2]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			checkJSONValues(data, 10) // must not panic
			return
		}
		if n := jsonElements(t, data); n > 0 && checkJSONValues(data, n-1) == nil {
			t.Errorf("%d elements pass a bound of %d", n, n-1)
		}
	})
}
