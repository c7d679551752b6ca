package exporter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// SyncPolicy says when the spool calls fsync.
type SyncPolicy int

const (
	// SyncBatch (the default) fsyncs the segment after every Append call and the committed offset before it
	// replaces the old one: an event Append accepted survives a kernel crash or power loss, not only kill -9.
	SyncBatch SyncPolicy = iota
	// SyncNone leaves flushing to the kernel: Append'ed events survive the process being killed (they are in the
	// page cache) but the last few seconds may be lost with the machine. For benchmarks and throwaway nodes.
	SyncNone
)

// SpoolOptions bound a spool. Zero values take the defaults.
type SpoolOptions struct {
	// MaxBytes bounds the segments on disk (default 64 MiB). Past it the oldest segment is dropped, undelivered
	// events and all, and counted.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts (default MaxBytes/16, at most 4 MiB): the unit in which
	// delivered events are freed and a full spool drops.
	SegmentBytes int64
	// MaxRecord bounds one event (default 1 MiB); larger ones are refused by Append.
	MaxRecord int
	Sync      SyncPolicy
	// Name labels log lines (the sink's name).
	Name   string
	Logger *slog.Logger
}

func (o *SpoolOptions) defaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(o.MaxBytes/16, 4<<20)
	}
	// At least four segments fit: dropping one frees space and keeps most of the backlog.
	o.SegmentBytes = max(min(o.SegmentBytes, o.MaxBytes/4), 1)
	if o.MaxRecord <= 0 {
		o.MaxRecord = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Cursor is a position in the spool: the sequence number of a record and where it starts (segment and offset).
type Cursor struct {
	Seq uint64 `json:"seq"`
	Seg uint64 `json:"seg"`
	Off int64  `json:"off"`
}

// Batch is what Peek returns: records from Start (the oldest unacknowledged) up to End (exclusive), to pass to Ack
// once delivered.
type Batch struct {
	Records    [][]byte
	Start, End Cursor
}

// SpoolStats are the spool's counters, for metrics.
type SpoolStats struct {
	// Pending events wait for delivery; Bytes is what the segments hold on disk.
	Pending uint64
	Bytes   int64
	// Appended, Acked and Dropped count events since the spool was opened. Dropped counts events the spool discarded
	// undelivered: oldest-first when full, and the rest of a segment found corrupt.
	Appended, Acked, Dropped uint64
}

type segment struct {
	first uint64 // sequence number of its first record (its file name)
	size  int64
}

// Spool is a bounded, append-only, on-disk FIFO of events for one sink: at-least-once delivery across sink outages
// and restarts. Events are appended to segment files; the committed offset (file "ack") says which were delivered.
// Reopening after a crash (even kill -9 mid-append) resumes from the last acknowledged event, in order. One process
// at a time: the directory is flock'ed.
type Spool struct {
	dir  string
	opts SpoolOptions
	log  *slog.Logger
	lock *os.File

	mu       sync.Mutex
	segs     []segment // oldest first; the last is the active one
	active   *os.File
	next     uint64 // sequence number of the next record appended
	head     Cursor // oldest unacknowledged record
	total    int64
	ready    chan struct{}
	dropping bool
	closed   bool
	stats    SpoolStats
}

const (
	segSuffix = ".seg"
	ackFile   = "ack"
)

// OpenSpool opens (creating) the spool in dir, cutting off a record torn by a crash.
func OpenSpool(dir string, opts SpoolOptions) (*Spool, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open spool lock %s: %w", dir, err)
	}
	if err := lockExclusive(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock spool %s (another rootscan uses it?): %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts, log: opts.Logger.With("sink", opts.Name), lock: lock, ready: make(chan struct{}, 1)}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	if s.head.Seq < s.next {
		s.signal()
	}
	return s, nil
}

// recover rebuilds the in-memory state from the directory.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		s.segs = append(s.segs, segment{first: first, size: info.Size()})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return compareU64(a.first, b.first) })
	ack, ackErr := s.readAck()
	if len(s.segs) == 0 {
		s.next = max(ack.Seq, 1)
		if err := s.newSegment(); err != nil {
			return err
		}
		s.head = Cursor{Seq: s.next, Seg: s.next}
		return nil
	}
	// The last segment may end in a torn record: count its valid records and cut the rest off.
	last := &s.segs[len(s.segs)-1]
	f, err := os.OpenFile(s.segPath(last.first), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	s.active = f
	r := newSegmentReader(f, 0, s.opts.MaxRecord)
	n := uint64(0)
	for {
		seq, _, err := r.next()
		if err == nil && seq == last.first+n {
			n++
			continue
		}
		if err != io.EOF {
			s.log.Warn("spool: cutting off damaged end of last segment", "segment", last.first, "offset", r.off, "err", err)
			if err := f.Truncate(r.off); err != nil {
				return fmt.Errorf("truncate segment %d: %w", last.first, err)
			}
		}
		break
	}
	last.size = r.off
	s.next = last.first + n
	for _, sg := range s.segs {
		s.total += sg.size
	}
	// Place the head at the committed offset when it is valid, else at the oldest record (redelivery, never loss).
	s.head = Cursor{Seq: s.segs[0].first, Seg: s.segs[0].first}
	if ackErr == nil {
		if i := s.segIndex(ack.Seg); i >= 0 && ack.Off <= s.segs[i].size && ack.Seq >= ack.Seg && ack.Seq <= s.next {
			s.head = ack
		} else if ack.Seq > s.head.Seq {
			s.log.Warn("spool: committed offset does not match the segments, redelivering from the oldest", "ack", ack)
		}
	} else if !errors.Is(ackErr, fs.ErrNotExist) {
		s.log.Warn("spool: committed offset unreadable, redelivering from the oldest", "err", ackErr)
	}
	s.normalizeHead()
	return s.removeConsumed()
}

// Append adds events (encoded) to the spool, durably per the sync policy, dropping the oldest segments when the
// spool is full. On an error a prefix of payloads may have been appended: the caller retries, and consumers
// de-duplicate by event ID.
func (s *Spool) Append(payloads [][]byte) error {
	for _, p := range payloads {
		if len(p) > s.opts.MaxRecord {
			return fmt.Errorf("spool %s: event of %d bytes over the %d byte limit", s.opts.Name, len(p), s.opts.MaxRecord)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("spool %s: closed", s.opts.Name)
	}
	before, seq := s.next, s.next
	var buf []byte
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		last := &s.segs[len(s.segs)-1]
		if _, err := s.active.Write(buf); err != nil {
			// Never leave a partial record followed by later ones: cut back to the last whole record.
			_ = s.active.Truncate(last.size)
			return fmt.Errorf("append to spool segment %d: %w", last.first, err)
		}
		last.size += int64(len(buf))
		s.total += int64(len(buf))
		s.next = seq
		buf = buf[:0]
		return nil
	}
	var err error
	for _, p := range payloads {
		size := s.segs[len(s.segs)-1].size + int64(len(buf))
		if size > 0 && size+recordHeaderSize+int64(len(p)) > s.opts.SegmentBytes {
			if err = flush(); err != nil {
				break
			}
			if err = s.rotate(); err != nil {
				break
			}
		}
		buf = appendRecord(buf, seq, p)
		seq++
	}
	if err == nil {
		err = flush()
	}
	if err == nil && s.opts.Sync == SyncBatch {
		if err = s.active.Sync(); err != nil {
			err = fmt.Errorf("fsync spool %s: %w", s.opts.Name, err)
		}
	}
	s.stats.Appended += s.next - before
	if s.next > before {
		s.enforceLimit()
		s.signal()
	}
	return err
}

// rotate closes the active segment and starts a new one named by the next sequence number.
func (s *Spool) rotate() error {
	if s.opts.Sync == SyncBatch {
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("fsync spool segment: %w", err)
		}
	}
	if err := s.active.Close(); err != nil {
		return fmt.Errorf("close spool segment: %w", err)
	}
	return s.newSegment()
}

func (s *Spool) newSegment() error {
	f, err := os.OpenFile(s.segPath(s.next), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	s.active = f
	s.segs = append(s.segs, segment{first: s.next})
	return nil
}

// enforceLimit drops the oldest segments while the spool is over MaxBytes, counting the undelivered events in them.
func (s *Spool) enforceLimit() {
	for s.total > s.opts.MaxBytes && len(s.segs) > 1 {
		old := s.segs[0]
		end := s.segs[1].first
		if s.head.Seg == old.first {
			lost := end - s.head.Seq
			s.stats.Dropped += lost
			if !s.dropping && lost > 0 {
				s.dropping = true
				s.log.Warn("spool full: dropping oldest undelivered events until the sink catches up",
					"max_bytes", s.opts.MaxBytes, "dropped_total", s.stats.Dropped)
			}
			s.head = Cursor{Seq: end, Seg: end}
		}
		if err := os.Remove(s.segPath(old.first)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("spool: remove dropped segment", "segment", old.first, "err", err)
		}
		s.total -= old.size
		s.segs = s.segs[1:]
		if err := s.writeAck(); err != nil {
			s.log.Error("spool: commit offset after drop", "err", err)
		}
	}
}

// Peek returns up to maxEvents records (and about maxBytes) from the oldest unacknowledged one, without removing them.
func (s *Spool) Peek(maxEvents, maxBytes int) (Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		b, skip, err := s.peekLocked(maxEvents, maxBytes)
		if err != nil || !skip {
			return b, err
		}
	}
}

// peekLocked reads one batch. skip reports that the head segment was corrupt and has been skipped (try again).
func (s *Spool) peekLocked(maxEvents, maxBytes int) (b Batch, skip bool, err error) {
	b.Start, b.End = s.head, s.head
	cur := s.head
	size := 0
	for cur.Seq < s.next && len(b.Records) < maxEvents && (size < maxBytes || len(b.Records) == 0) {
		i := s.segIndex(cur.Seg)
		if i < 0 {
			return b, false, fmt.Errorf("spool %s: head segment %d missing", s.opts.Name, cur.Seg)
		}
		f, err := os.Open(s.segPath(cur.Seg))
		if err != nil {
			return b, false, fmt.Errorf("open spool segment: %w", err)
		}
		r := newSegmentReader(io.NewSectionReader(f, cur.Off, s.segs[i].size-cur.Off), cur.Off, s.opts.MaxRecord)
		for len(b.Records) < maxEvents && (size < maxBytes || len(b.Records) == 0) {
			seq, p, err := r.next()
			if err == nil && seq != cur.Seq {
				err = fmt.Errorf("%w: sequence %d where %d was expected", errCorruptRecord, seq, cur.Seq)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				if len(b.Records) > 0 || i == len(s.segs)-1 {
					return b, false, fmt.Errorf("read spool segment %d: %w", cur.Seg, err)
				}
				// Damage in a closed segment: its remaining events are lost; count them and move on.
				next := s.segs[i+1].first
				s.stats.Dropped += next - cur.Seq
				s.log.Error("spool: corrupt segment, skipping its remaining events", "segment", cur.Seg, "lost", next-cur.Seq, "err", err)
				s.head = Cursor{Seq: next, Seg: next}
				if err := s.writeAck(); err != nil {
					return b, false, err
				}
				return b, true, s.removeConsumed()
			}
			b.Records = append(b.Records, p)
			size += len(p)
			cur.Seq++
			cur.Off = r.off
		}
		f.Close()
		if cur.Off >= s.segs[i].size && i < len(s.segs)-1 {
			cur = Cursor{Seq: cur.Seq, Seg: s.segs[i+1].first}
		} else if len(b.Records) < maxEvents && (size < maxBytes || len(b.Records) == 0) {
			break // end of the active segment
		}
	}
	b.End = cur
	return b, false, nil
}

// Ack commits that every record before end was delivered. An end at or behind the head (events dropped meanwhile)
// is ignored.
func (s *Spool) Ack(end Cursor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || end.Seq <= s.head.Seq || s.segIndex(end.Seg) < 0 || end.Seq > s.next {
		return nil
	}
	s.stats.Acked += end.Seq - s.head.Seq
	s.head = end
	s.dropping = false
	s.normalizeHead()
	if err := s.writeAck(); err != nil {
		return err
	}
	return s.removeConsumed()
}

// normalizeHead moves a head that sits at the end of a closed segment to the start of the next.
func (s *Spool) normalizeHead() {
	for i := s.segIndex(s.head.Seg); i >= 0 && i < len(s.segs)-1 && s.head.Off >= s.segs[i].size; i++ {
		s.head = Cursor{Seq: s.head.Seq, Seg: s.segs[i+1].first}
	}
}

// removeConsumed deletes segments entirely before the head.
func (s *Spool) removeConsumed() error {
	for len(s.segs) > 1 && s.segs[0].first < s.head.Seg {
		if err := os.Remove(s.segPath(s.segs[0].first)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove delivered spool segment: %w", err)
		}
		s.total -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	return nil
}

// writeAck replaces the committed offset atomically.
func (s *Spool) writeAck() error {
	tmp := filepath.Join(s.dir, ackFile+".tmp")
	data, _ := json.Marshal(s.head)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("commit spool offset: %w", err)
	}
	_, err = f.Write(data)
	if err == nil && s.opts.Sync == SyncBatch {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, ackFile))
	}
	if err != nil {
		return fmt.Errorf("commit spool offset: %w", err)
	}
	return nil
}

func (s *Spool) readAck() (Cursor, error) {
	var c Cursor
	f, err := os.Open(filepath.Join(s.dir, ackFile))
	if err != nil {
		return c, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("decode committed offset: %w", err)
	}
	return c, nil
}

// Ready is signalled when events were appended (or are pending at open): a sender waits on it instead of polling.
func (s *Spool) Ready() <-chan struct{} { return s.ready }

func (s *Spool) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Stats returns the spool's counters.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Pending = s.next - s.head.Seq
	st.Bytes = s.total
	return st
}

// Close syncs and closes the spool; pending events stay on disk for the next OpenSpool.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.active != nil {
		err = s.active.Sync()
	}
	return errors.Join(err, s.closeFiles())
}

func (s *Spool) closeFiles() error {
	var errs []error
	if s.active != nil {
		errs = append(errs, s.active.Close())
	}
	errs = append(errs, s.lock.Close()) // closing the last fd releases the flock
	return errors.Join(errs...)
}

func (s *Spool) segIndex(first uint64) int {
	i, ok := slices.BinarySearchFunc(s.segs, first, func(sg segment, f uint64) int { return compareU64(sg.first, f) })
	if !ok {
		return -1
	}
	return i
}

func (s *Spool) segPath(first uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", first, segSuffix))
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
