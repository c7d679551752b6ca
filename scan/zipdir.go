package scan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// archive/zip's NewReader builds a *zip.File (about 200 bytes, plus its name and extra field) for every central
// directory header it finds, and it reads headers until one does not parse, whatever count the end record states
// (it compares only the low 16 bits). A 500 MB directory of minimal headers, which a layer's gzip shrinks to 1.5 MB,
// therefore costs gigabytes before any count can be checked on the result. zipDirectory walks the same headers
// first, in a fixed buffer, so the archive is refused before NewReader allocates anything for it.

const (
	zipEndLen         = 22 // end of central directory record, without its comment
	zipEnd64LocLen    = 20 // zip64 end of central directory locator
	zipEnd64Len       = 56 // zip64 end of central directory record, without extensible data
	zipDirHeaderLen   = 46 // central directory header, without name, extra field and comment
	zipMaxEndSearch   = 65 * 1024
	zipSigEnd         = 0x06054b50
	zipSigEnd64Loc    = 0x07064b50
	zipSigEnd64       = 0x06064b50
	zipSigDirHeader   = 0x02014b50
	zipNewReaderSlack = 2*zipMaxEndSearch + zipEnd64LocLen + zipEnd64Len + 64<<10
)

// errZipDirectory marks an archive whose central directory exceeds a bound; it is refused before it is parsed.
var errZipDirectory = errors.New("zip central directory too large")

// zipDirectory is what zipDirectoryOf found: how many headers archive/zip will build, and their bytes.
type zipDirectory struct {
	entries int
	bytes   int64
}

// zipDirectoryOf locates the central directory the way archive/zip does (end record in the last 65 KiB, zip64
// locator, base offset for archives with prepended data) and walks its headers with a small buffer, stopping where
// archive/zip would stop. It fails with errZipDirectory as soon as the headers exceed maxEntries or maxBytes. A
// file that archive/zip would not accept either is not an error here: NewReader reports it.
func zipDirectoryOf(ra io.ReaderAt, size int64, maxEntries int, maxBytes int64) (zipDirectory, error) {
	start, ok := zipDirectoryStart(ra, size)
	if !ok {
		return zipDirectory{}, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(ra, start, size-start), 8<<10)
	var (
		d   zipDirectory
		hdr [zipDirHeaderLen]byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil || binary.LittleEndian.Uint32(hdr[:]) != zipSigDirHeader {
			return d, nil
		}
		rest := int(binary.LittleEndian.Uint16(hdr[28:])) + int(binary.LittleEndian.Uint16(hdr[30:])) + int(binary.LittleEndian.Uint16(hdr[32:]))
		if n, _ := br.Discard(rest); n < rest {
			return d, nil
		}
		d.entries++
		d.bytes += int64(zipDirHeaderLen + rest)
		if d.entries > maxEntries {
			return d, fmt.Errorf("%w: more than %d entries", errZipDirectory, maxEntries)
		}
		if d.bytes > maxBytes {
			return d, fmt.Errorf("%w: more than %d bytes", errZipDirectory, maxBytes)
		}
	}
}

// zipDirectoryStart returns the offset of the first central directory header as archive/zip computes it.
func zipDirectoryStart(ra io.ReaderAt, size int64) (int64, bool) {
	end, endOff, ok := zipFindEnd(ra, size)
	if !ok {
		return 0, false
	}
	records := uint64(binary.LittleEndian.Uint16(end[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(end[12:]))
	dirOff := uint64(binary.LittleEndian.Uint32(end[16:]))
	if records == 0xffff || dirSize == 0xffff || dirOff == 0xffffffff {
		var ok bool
		if endOff, dirSize, dirOff, ok = zip64End(ra, endOff, dirSize, dirOff); !ok {
			return 0, false
		}
	}
	if dirSize > math.MaxInt64 || dirOff > math.MaxInt64 {
		return 0, false
	}
	// As archive/zip computes it, wrapping included: only the sum base+dirOff has to land in the file.
	base := endOff - int64(dirSize) - int64(dirOff)
	if o := base + int64(dirOff); o < 0 || o >= size {
		return 0, false
	}
	if base > 0 && zipHeaderAt(ra, int64(dirOff), size) {
		base = 0
	}
	return base + int64(dirOff), true
}

// zipFindEnd finds the end of central directory record as archive/zip does: the last signature in the last 1 KiB,
// else in the last 65 KiB, whose comment fits the file. It returns the record and its offset.
func zipFindEnd(ra io.ReaderAt, size int64) ([]byte, int64, bool) {
	for _, n := range []int64{1 << 10, zipMaxEndSearch} {
		n = min(n, size)
		if n < zipEndLen {
			return nil, 0, false
		}
		buf := make([]byte, n)
		if _, err := ra.ReadAt(buf, size-n); err != nil && err != io.EOF {
			return nil, 0, false
		}
		for i := len(buf) - zipEndLen; i >= 0; i-- {
			if binary.LittleEndian.Uint32(buf[i:]) == zipSigEnd {
				if int(binary.LittleEndian.Uint16(buf[i+20:]))+zipEndLen+i > len(buf) {
					return nil, 0, false // truncated comment: archive/zip gives up too
				}
				return buf[i:], size - n + int64(i), true
			}
		}
		if n == size {
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// zip64End reads the zip64 end record the locator before the end record points to, if there is one.
func zip64End(ra io.ReaderAt, endOff int64, dirSize, dirOff uint64) (int64, uint64, uint64, bool) {
	locOff := endOff - zipEnd64LocLen
	if locOff < 0 {
		return endOff, dirSize, dirOff, true
	}
	var loc [zipEnd64LocLen]byte
	if _, err := ra.ReadAt(loc[:], locOff); err != nil {
		return 0, 0, 0, false
	}
	le := binary.LittleEndian
	if le.Uint32(loc[:]) != zipSigEnd64Loc || le.Uint32(loc[4:]) != 0 || le.Uint32(loc[16:]) != 1 {
		return endOff, dirSize, dirOff, true
	}
	p := le.Uint64(loc[8:])
	if p > 1<<62 {
		return 0, 0, 0, false
	}
	var rec [zipEnd64Len]byte
	if _, err := ra.ReadAt(rec[:], int64(p)); err != nil || le.Uint32(rec[:]) != zipSigEnd64 {
		return 0, 0, 0, false
	}
	return int64(p), le.Uint64(rec[40:]), le.Uint64(rec[48:]), true
}

// zipHeaderAt reports whether a whole central directory header starts at off.
func zipHeaderAt(ra io.ReaderAt, off, size int64) bool {
	var hdr [zipDirHeaderLen]byte
	if off < 0 || off > size-zipDirHeaderLen {
		return false
	}
	if _, err := ra.ReadAt(hdr[:], off); err != nil || binary.LittleEndian.Uint32(hdr[:]) != zipSigDirHeader {
		return false
	}
	rest := int64(binary.LittleEndian.Uint16(hdr[28:])) + int64(binary.LittleEndian.Uint16(hdr[30:])) + int64(binary.LittleEndian.Uint16(hdr[32:]))
	return off+zipDirHeaderLen+rest <= size
}

// meteredReaderAt fails reads once more than left bytes were read through it while armed. It backs zipDirectoryOf
// up: should archive/zip ever find the directory somewhere else than zipDirectoryStart, NewReader still reads (and
// so builds entries for) a bounded number of bytes.
type meteredReaderAt struct {
	ra    io.ReaderAt
	left  int64
	armed bool
}

func (m *meteredReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if m.armed {
		if int64(len(p)) > m.left {
			return 0, fmt.Errorf("%w: read more than its stated size", errZipDirectory)
		}
		m.left -= int64(len(p))
	}
	return m.ra.ReadAt(p, off)
}
