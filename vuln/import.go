package vuln

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits bound what one import reads, so a hostile or broken archive (a zip bomb, a million-entry directory)
// fails cleanly instead of exhausting memory or disk. The defaults hold osv.dev's largest published archive (all
// ecosystems in one all.zip: about 600,000 records, 4 GiB uncompressed) with a wide margin.
type Limits struct {
	// MaxEntries is the number of zip entries (or files under a folder) one input may have.
	MaxEntries int
	// MaxEntrySize is the largest record file, uncompressed.
	MaxEntrySize int64
	// MaxTotal is the uncompressed bytes one input may expand to.
	MaxTotal int64
	// MaxErrors is how many bad records an input may hold before it is refused as not an OSV feed.
	MaxErrors int
}

// DefaultLimits are the bounds used when a Limits field is zero.
var DefaultLimits = Limits{MaxEntries: 2_000_000, MaxEntrySize: maxRecordSize, MaxTotal: 16 << 30, MaxErrors: 1000}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	if l.MaxEntrySize <= 0 || l.MaxEntrySize > maxRecordSize {
		l.MaxEntrySize = DefaultLimits.MaxEntrySize
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultLimits.MaxTotal
	}
	if l.MaxErrors <= 0 {
		l.MaxErrors = DefaultLimits.MaxErrors
	}
	return l
}

// ImportStats counts what one input contributed.
type ImportStats struct {
	Files     int
	Records   int
	Stored    int
	Withdrawn int
	// Errors are the bad records skipped (at most 10 kept, BadRecords counts them all).
	Errors     []string
	BadRecords int
}

func (s *ImportStats) bad(where string, err error, max int) error {
	s.BadRecords++
	if len(s.Errors) < 10 {
		s.Errors = append(s.Errors, where+": "+err.Error())
	}
	if s.BadRecords > max {
		return fmt.Errorf("more than %d bad records (last: %s: %w)", max, where, err)
	}
	return nil
}

// ErrNoRecords is returned for an input without a single OSV record: an empty archive or the wrong file is an
// error, not an empty database.
var ErrNoRecords = errors.New("no OSV records found")

// ImportPath adds the OSV records of a file (one record, a JSON array of records, or a .zip archive like osv.dev's
// all.zip) or of a folder (every *.json and *.zip under it; symbolic links are not followed) to the build.
func (b *Builder) ImportPath(ctx context.Context, p string, lim Limits) (ImportStats, error) {
	lim = lim.withDefaults()
	var st ImportStats
	fi, err := os.Lstat(p)
	if err != nil {
		return st, fmt.Errorf("import %s: %w", p, err)
	}
	var total int64
	switch {
	case fi.IsDir():
		err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			st.Files++
			if st.Files > lim.MaxEntries {
				return fmt.Errorf("more than %d files", lim.MaxEntries)
			}
			switch {
			case strings.HasSuffix(fp, ".zip"):
				return b.importZipFile(ctx, fp, lim, &st)
			case strings.HasSuffix(fp, ".json"):
				return b.importJSONFile(fp, lim, &st, &total)
			}
			return nil
		})
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("not a regular file or a directory")
	case strings.HasSuffix(p, ".zip") || sniffZip(p):
		st.Files++
		err = b.importZipFile(ctx, p, lim, &st)
	default:
		st.Files++
		err = b.importJSONFile(p, lim, &st, &total)
	}
	if err == nil && st.Records == 0 {
		err = ErrNoRecords
	}
	if err != nil {
		return st, fmt.Errorf("import %s: %w", p, err)
	}
	b.AddSource(Source{Location: p, Records: st.Stored})
	return st, nil
}

// sniffZip says whether a file starts like a zip archive (osv.dev's archives are downloaded under any name).
func sniffZip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "PK\x03\x04"
}

func (b *Builder) importJSONFile(p string, lim Limits, st *ImportStats, total *int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", p)
	}
	// A JSON array of records may be larger than one record; it is still bounded by the input's total.
	if *total += fi.Size(); *total > lim.MaxTotal {
		return fmt.Errorf("inputs exceed %d bytes", lim.MaxTotal)
	}
	data, err := io.ReadAll(io.LimitReader(f, lim.MaxTotal))
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	return b.addJSON(p, data, lim, st)
}

// addJSON adds one record, or every record of a JSON array.
func (b *Builder) addJSON(where string, data []byte, lim Limits, st *ImportStats) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return st.bad(where, fmt.Errorf("decode OSV record list: %w", err), lim.MaxErrors)
		}
		for i, raw := range raws {
			if err := b.addOne(fmt.Sprintf("%s[%d]", where, i), raw, lim, st); err != nil {
				return err
			}
		}
		return nil
	}
	if int64(len(data)) > lim.MaxEntrySize {
		return st.bad(where, fmt.Errorf("record of %d bytes exceeds %d", len(data), lim.MaxEntrySize), lim.MaxErrors)
	}
	return b.addOne(where, data, lim, st)
}

func (b *Builder) addOne(where string, data []byte, lim Limits, st *ImportStats) error {
	r, err := ParseRecord(data)
	if err != nil {
		return st.bad(where, err, lim.MaxErrors)
	}
	st.Records++
	if r.Withdrawn != "" {
		st.Withdrawn++
	}
	stored, err := b.Add(r)
	if err != nil {
		return err
	}
	if stored {
		st.Stored++
	}
	return nil
}

func (b *Builder) importZipFile(ctx context.Context, p string, lim Limits, st *ImportStats) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return b.ImportZip(ctx, f, fi.Size(), p, lim, st)
}

// ImportZip adds the records of a zip archive read from r (osv.dev's <ecosystem>/all.zip: one <ID>.json per
// advisory). The archive is checked as it is read: entry count from the central directory, each entry's size and
// the total against lim (by bytes actually inflated, not by the sizes the archive claims), and every entry's CRC, so
// a truncated or tampered archive is an error.
func (b *Builder) ImportZip(ctx context.Context, r io.ReaderAt, size int64, name string, lim Limits, st *ImportStats) error {
	lim = lim.withDefaults()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("read zip %s: %w", name, err)
	}
	if len(zr.File) > lim.MaxEntries {
		return fmt.Errorf("zip %s: %d entries exceed %d", name, len(zr.File), lim.MaxEntries)
	}
	var total int64
	buf := new(bytes.Buffer)
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if zf.FileInfo().IsDir() || !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		where := name + ":" + path.Clean(zf.Name)
		if zf.UncompressedSize64 > uint64(lim.MaxEntrySize) {
			if err := st.bad(where, fmt.Errorf("entry of %d bytes exceeds %d", zf.UncompressedSize64, lim.MaxEntrySize), lim.MaxErrors); err != nil {
				return err
			}
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("zip %s: %w", where, err)
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(rc, lim.MaxEntrySize+1))
		rc.Close()
		if err != nil {
			// A CRC or inflate error means the archive is damaged: refuse it whole.
			return fmt.Errorf("zip %s: %w", where, err)
		}
		if n > lim.MaxEntrySize {
			return fmt.Errorf("zip %s: entry inflates past %d bytes (size field lies)", where, lim.MaxEntrySize)
		}
		if total += n; total > lim.MaxTotal {
			return fmt.Errorf("zip %s inflates past %d bytes", name, lim.MaxTotal)
		}
		if err := b.addJSON(where, buf.Bytes(), lim, st); err != nil {
			return err
		}
	}
	return nil
}
