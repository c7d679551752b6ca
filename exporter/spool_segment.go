package exporter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A spool segment is a sequence of records, each
//
//	length  uint32 big-endian: payload bytes
//	crc     uint32 big-endian: CRC-32C of seq and payload
//	seq     uint64 big-endian: the record's sequence number (the segment's file name is its first)
//	payload length bytes (one Event as JSON)
//
// The CRC covers the sequence number so a record copied to the wrong place is caught too. A crash while appending
// leaves a torn record at the end of the last segment; opening the spool cuts it off.
const recordHeaderSize = 16

// Errors of the segment reader: a torn record is the normal end of a segment a crash interrupted, a corrupt one is
// damage (or a bug) and costs the rest of its segment.
var (
	errTornRecord    = errors.New("torn record at end of segment")
	errCorruptRecord = errors.New("corrupt record")
)

// appendRecord appends one encoded record to dst.
func appendRecord(dst []byte, seq uint64, payload []byte) []byte {
	var h [recordHeaderSize]byte
	binary.BigEndian.PutUint32(h[0:], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[4:], recordCRC(seq, payload))
	binary.BigEndian.PutUint64(h[8:], seq)
	return append(append(dst, h[:]...), payload...)
}

func recordCRC(seq uint64, payload []byte) uint32 {
	tab := crc32.MakeTable(crc32.Castagnoli) // cached by the standard library after the first call
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], seq)
	return crc32.Update(crc32.Checksum(s[:], tab), tab, payload)
}

// segmentReader reads records one by one, never allocating more than maxRecord bytes for one, whatever the length
// field claims.
type segmentReader struct {
	r         *bufio.Reader
	maxRecord int
	// off is the offset just past the last record read successfully.
	off int64
}

func newSegmentReader(r io.Reader, off int64, maxRecord int) *segmentReader {
	return &segmentReader{r: bufio.NewReaderSize(r, 64<<10), maxRecord: maxRecord, off: off}
}

// next returns the next record. At a clean end it returns io.EOF; a record cut short returns errTornRecord; a length
// over maxRecord or a CRC mismatch returns errCorruptRecord.
func (s *segmentReader) next() (seq uint64, payload []byte, err error) {
	var h [recordHeaderSize]byte
	n, err := io.ReadFull(s.r, h[:])
	switch {
	case err == io.EOF:
		return 0, nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return 0, nil, fmt.Errorf("%w: %d header bytes at offset %d", errTornRecord, n, s.off)
	case err != nil:
		return 0, nil, err
	}
	length := binary.BigEndian.Uint32(h[0:])
	if int64(length) > int64(s.maxRecord) {
		return 0, nil, fmt.Errorf("%w: length %d over %d at offset %d", errCorruptRecord, length, s.maxRecord, s.off)
	}
	seq = binary.BigEndian.Uint64(h[8:])
	payload = make([]byte, length)
	if _, err := io.ReadFull(s.r, payload); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return 0, nil, fmt.Errorf("%w: payload of %d bytes at offset %d", errTornRecord, length, s.off)
		}
		return 0, nil, err
	}
	if recordCRC(seq, payload) != binary.BigEndian.Uint32(h[4:]) {
		return 0, nil, fmt.Errorf("%w: checksum mismatch at offset %d", errCorruptRecord, s.off)
	}
	s.off += recordHeaderSize + int64(length)
	return seq, payload, nil
}
