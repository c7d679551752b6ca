package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	yaml "go.yaml.in/yaml/v3"
)

// Config formats parse_config understands, named as profiles write them.
const (
	FormatKeyValue  = "keyvalue"   // key=value lines (os-release, /etc/default/*), quotes stripped, last wins
	FormatINI       = "ini"        // [section] key = value; keys before any section are under ""
	FormatYAML      = "yaml"       // any YAML document
	FormatJSON      = "json"       // any JSON document; integers stay integers
	FormatTOML      = "toml"       // any TOML document
	FormatSSHD      = "sshd"       // sshd_config as sshd reads it: see parseSSHD (first wins, lists, Match blocks, Include)
	FormatLoginDefs = "login.defs" // "KEY value" lines, last wins
)

// maxConfigDepth bounds the nesting of a parsed document handed to CEL.
const maxConfigDepth = 64

// ParseConfig parses a config file's content in one of the formats above into plain values (maps with string
// keys, lists, strings, int64, float64, bool, time.Time). Malformed input is an error; nothing panics.
func ParseConfig(data []byte, format string) (any, error) {
	switch format {
	case FormatKeyValue:
		return parseLines(data, "="), nil
	case FormatLoginDefs:
		return parseLines(data, ""), nil
	case FormatSSHD:
		return parseSSHD(data, nil)
	case FormatINI:
		return parseINI(data)
	case FormatJSON:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, errors.New("json: data after the document")
		}
		return normalize(v, 0)
	case FormatYAML:
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
		return normalize(v, 0)
	case FormatTOML:
		var v map[string]any
		if _, err := toml.Decode(string(data), &v); err != nil {
			return nil, fmt.Errorf("toml: %w", err)
		}
		return normalize(v, 0)
	}
	return nil, fmt.Errorf("unknown config format %q (want keyvalue, ini, yaml, json, toml, sshd or login.defs)", format)
}

// parseLines reads "key<sep>value" lines (sep "" means whitespace), skipping blanks and # comments; the last
// value of a key wins, as for shell-sourced files and login.defs.
func parseLines(data []byte, sep string) map[string]any {
	out := map[string]any{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		var k, v string
		if sep != "" {
			var ok bool
			if k, v, ok = strings.Cut(line, sep); !ok {
				continue
			}
		} else {
			i := strings.IndexAny(line, " \t=")
			if i < 0 {
				k = line
			} else {
				k, v = line[:i], strings.TrimLeft(line[i:], " \t")
				v = strings.TrimSpace(strings.TrimPrefix(v, "="))
			}
		}
		k, v = strings.TrimSpace(k), unquote(strings.TrimSpace(v))
		out[k] = v
	}
	return out
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func parseINI(data []byte) (map[string]any, error) {
	out := map[string]any{}
	sec := map[string]any{}
	out[""] = sec
	for n, line := 1, ""; len(data) > 0; n++ {
		line, data = cutLine(data)
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if line[len(line)-1] != ']' {
				return nil, fmt.Errorf("ini: line %d: unterminated section header", n)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			s, ok := out[name].(map[string]any)
			if !ok {
				s = map[string]any{}
				out[name] = s
			}
			sec = s
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			sec[line] = ""
			continue
		}
		sec[strings.TrimSpace(line[:i])] = unquote(strings.TrimSpace(line[i+1:]))
	}
	return out, nil
}

func cutLine(b []byte) (string, []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i]), b[i+1:]
	}
	return string(b), nil
}

// normalize turns decoded documents into the value kinds CEL adapts: string-keyed maps, []any, int64 for integral
// JSON numbers. It bounds nesting so a hostile document cannot exhaust the stack later.
func normalize(v any, depth int) (any, error) {
	if depth > maxConfigDepth {
		return nil, fmt.Errorf("document nested deeper than %d levels", maxConfigDepth)
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = n
		}
		return out, nil
	case []any:
		return normalizeList(t, depth)
	case []map[string]any: // TOML arrays of tables
		return normalizeList(t, depth)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		f, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", t, err)
		}
		return f, nil
	case int:
		return int64(t), nil
	case uint64:
		return float64(t), nil
	case nil, string, bool, int64, float64, time.Time:
		return t, nil
	}
	return fmt.Sprint(v), nil
}

// normalizeList normalizes the elements of a list one level below depth.
func normalizeList[E any](list []E, depth int) ([]any, error) {
	out := make([]any, len(list))
	for i, e := range list {
		n, err := normalize(e, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}
