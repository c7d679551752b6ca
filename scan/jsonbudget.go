package scan

import "fmt"

// JSON decoding allocates per value, not per byte: a 16 MiB package-lock.json of `"a":{},` members decodes into
// two million map entries (hundreds of MiB), and `[{},{},...]` into millions of structs. Capping the file's bytes
// therefore does not cap what decoding it costs; jsonValueCount caps the values too, before anything is decoded.

// Value bounds of the JSON files the analyzers decode. Real files stay far below them: a lock of 3,000 packages
// has about 100,000 values, a deps.json of a large ASP.NET application 20,000, an installed.json of 200 packages
// 10,000, a package.json a few hundred.
const (
	jsonMaxValuesLarge    = 500_000 // lock files, installed.json, deps.json, Rust audit data
	jsonMaxValuesManifest = 50_000  // one package.json
)

// checkJSONValues fails when data, read as JSON, has more than max elements in its arrays and objects (at every
// depth). It does not validate: it counts the commas and opening brackets outside strings, which is at least the
// number of elements, so the decoder that runs next allocates for at most that many.
func checkJSONValues(data []byte, max int) error {
	n := 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ',', '[', '{':
			if n++; n > max {
				return fmt.Errorf("%w: more than %d JSON values", ErrTooLarge, max)
			}
		}
	}
	return nil
}
