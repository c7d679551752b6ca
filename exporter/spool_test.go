package exporter

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func payloads(from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	return out
}

// drain reads and acknowledges everything pending, in batches of batch records.
func drain(t testing.TB, s *Spool, batch int) []string {
	t.Helper()
	var got []string
	for {
		b, err := s.Peek(batch, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 {
			return got
		}
		for _, r := range b.Records {
			got = append(got, string(r))
		}
		if err := s.Ack(b.End); err != nil {
			t.Fatal(err)
		}
	}
}

func want(from, n int) []string {
	var out []string
	for _, p := range payloads(from, n) {
		out = append(out, string(p))
	}
	return out
}

func equalStrings(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %d records %v\nwant %d records %v", len(got), head(got), len(want), head(want))
	}
}

func head(s []string) []string {
	if len(s) > 6 {
		return append(append([]string{}, s[:3]...), append([]string{"..."}, s[len(s)-3:]...)...)
	}
	return s
}

// crash releases the spool's files without Close's final fsync, as a killed process would.
func crash(s *Spool) {
	s.active.Close()
	s.lock.Close()
}

func TestSpoolOrderAcrossSegmentsAndAck(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, SpoolOptions{MaxBytes: 1 << 20, SegmentBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 100; i += 10 {
		if err := s.Append(payloads(i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 5 {
		t.Fatalf("want several segments of 256 bytes, got %d", len(segs))
	}
	equalStrings(t, drain(t, s, 7), want(0, 100))
	st := s.Stats()
	if st.Pending != 0 || st.Appended != 100 || st.Acked != 100 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("delivered segments must be removed, %d left", len(segs))
	}
}

func TestSpoolCrashResumesFromLastAck(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, SpoolOptions{SegmentBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(payloads(0, 50)); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Peek(20, 1<<20)
	if err := s.Ack(b.End); err != nil {
		t.Fatal(err)
	}
	// Delivered but not acknowledged: must come again after the crash.
	if _, err := s.Peek(10, 1<<20); err != nil {
		t.Fatal(err)
	}
	crash(s)

	s2, err := OpenSpool(dir, SpoolOptions{SegmentBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st := s2.Stats(); st.Pending != 30 {
		t.Fatalf("pending after reopen = %d, want 30", st.Pending)
	}
	if err := s2.Append(payloads(50, 5)); err != nil {
		t.Fatal(err)
	}
	equalStrings(t, drain(t, s2, 8), want(20, 35))
}

func TestSpoolCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(payloads(0, 3)); err != nil {
		t.Fatal(err)
	}
	seg := s.segPath(s.segs[len(s.segs)-1].first)
	crash(s)
	// A record cut short by a crash mid-write: a header claiming 100 bytes followed by 5.
	torn := appendRecord(nil, 4, bytes.Repeat([]byte("x"), 100))[:recordHeaderSize+5]
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn)
	f.Close()

	s2, err := OpenSpool(dir, SpoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Append(payloads(3, 2)); err != nil {
		t.Fatal(err)
	}
	equalStrings(t, drain(t, s2, 100), want(0, 5))
}

func TestSpoolFullDropsOldestAndCounts(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	s, err := OpenSpool(dir, SpoolOptions{MaxBytes: 4096, SegmentBytes: 512, Sync: SyncNone, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Each record is 16 + len(`{"n":123}`) bytes; 1000 of them are far over 4 KiB.
	for i := 0; i < 1000; i++ {
		if err := s.Append(payloads(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Bytes > 4096 {
		t.Fatalf("spool holds %d bytes, over its 4096 limit", st.Bytes)
	}
	if st.Dropped == 0 || st.Dropped+st.Pending != 1000 {
		t.Fatalf("dropped %d + pending %d != 1000 appended", st.Dropped, st.Pending)
	}
	// What is left is the newest events, in order.
	equalStrings(t, drain(t, s, 50), want(int(st.Dropped), int(st.Pending)))
	if n := strings.Count(logs.String(), "spool full"); n != 1 {
		t.Fatalf("want one log line for the drop episode, got %d:\n%s", n, logs.String())
	}
	// A new episode after delivery resumed logs again.
	for i := 0; i < 1000; i++ {
		s.Append(payloads(i, 1))
	}
	if n := strings.Count(logs.String(), "spool full"); n != 2 {
		t.Fatalf("want a second log line for the second episode, got %d", n)
	}
}

func TestSpoolRefusesOversizeAndSecondOpener(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, SpoolOptions{MaxRecord: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append([][]byte{[]byte("01234567890")}); err == nil {
		t.Fatal("an 11 byte event must be refused with MaxRecord 10")
	}
	if _, err := OpenSpool(dir, SpoolOptions{}); err == nil {
		t.Fatal("a second opener of a locked spool must fail")
	}
}

// TestSpoolKill9 appends from a child process that is killed with SIGKILL mid-stream: every event whose Append
// returned before the kill is there after reopening, in order, and nothing after a torn record.
func TestSpoolKill9(t *testing.T) {
	if dir := os.Getenv("ROOTSCAN_SPOOL_CHILD"); dir != "" {
		spoolChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolKill9$")
	cmd.Env = append(os.Environ(), "ROOTSCAN_SPOOL_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints "acking N" before Ack and "acked N" after it returns, "appended N" after Append returns.
	sc := bufio.NewScanner(out)
	acking, acked, appended := -1, -1, -1
	killed := false
	for sc.Scan() {
		kind, n, _ := strings.Cut(sc.Text(), " ")
		v, _ := strconv.Atoi(n)
		switch kind {
		case "appended":
			appended = v
		case "acking":
			acking = v
		case "acked":
			acked = v
		}
		if appended >= 3000 && !killed {
			cmd.Process.Signal(syscall.SIGKILL) // keep reading: what it printed before dying counts
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child stopped early at %d", appended)
	}
	s, err := OpenSpool(dir, SpoolOptions{SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := drain(t, s, 500)
	// Nothing unacknowledged is lost (the first pending is at most the last ack attempted + 1), a completed ack holds
	// (the first pending is past it), and everything up to the last completed Append is there, contiguous, in order.
	if len(got) == 0 {
		t.Fatal("nothing left after kill")
	}
	var first int
	fmt.Sscanf(got[0], `{"n":%d}`, &first)
	if first > acking+1 || first < acked+1 {
		t.Fatalf("first pending event %d, want within [%d, %d] (last ack completed, last ack attempted + 1)", first, acked+1, acking+1)
	}
	if last := first + len(got) - 1; last < appended {
		t.Fatalf("events up to %d were appended before the kill, only up to %d survived", appended, last)
	}
	equalStrings(t, got, want(first, len(got)))
	t.Logf("killed after append %d (acked %d): %d pending events recovered from %d", appended, acked, len(got), first)
}

// spoolChild appends events in small batches and acknowledges some, reporting progress until it is killed.
func spoolChild(dir string) {
	s, err := OpenSpool(dir, SpoolOptions{SegmentBytes: 4096, Sync: SyncNone})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; ; i += 3 {
		if err := s.Append(payloads(i, 3)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("appended", i+2)
		if i%30 == 0 {
			b, _ := s.Peek(20, 1<<20)
			if len(b.Records) > 0 {
				last := int(b.End.Seq) - 2 // sequence numbers start at 1, event numbers at 0
				fmt.Println("acking", last)
				s.Ack(b.End)
				fmt.Println("acked", last)
			}
		}
		if i > 100000 {
			time.Sleep(time.Second)
		}
	}
}

func FuzzSegmentReader(f *testing.F) {
	var good []byte
	for i, p := range payloads(0, 3) {
		good = appendRecord(good, uint64(i+1), p)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newSegmentReader(bytes.NewReader(data), 0, 4096)
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatal("more records than bytes")
			}
			_, p, err := r.next()
			if err != nil {
				if r.off > int64(len(data)) {
					t.Fatalf("offset %d past the %d bytes", r.off, len(data))
				}
				return
			}
			if len(p) > 4096 {
				t.Fatalf("record of %d bytes over the limit", len(p))
			}
		}
	})
}
