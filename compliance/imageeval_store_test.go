package compliance

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/rootscan/rootscan/report"
)

// storedImage is deltaImage's evaluation with a few containers' layers shared, as a daemon stores it.
func storedImageEval(t testing.TB) (*fixture, *ImageEval, []byte) {
	e, f, ie := deltaImage(t)
	for seed := range uint64(3) {
		checkDelta(t, e, f, ie, seed, 2, imageTarget(), nil)
	}
	b, err := ie.Encode("chain-1")
	if err != nil || b == nil {
		t.Fatalf("encode: %v (%d bytes)", err, len(b))
	}
	return f, ie, b
}

// An evaluation stored and read back by another engine with the same profiles (a restarted daemon) gives every
// container the same results as a full evaluation, and a container whose layer was shared before the restart
// evaluates nothing.
func TestImageEvalStored(t *testing.T) {
	f, ie, b := storedImageEval(t)
	e2 := probeEngine(t)
	got, err := e2.DecodeImageEval(b, "chain-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Engine() != e2 || got.Reads() != ie.Reads() || got.TreeBytes() != ie.TreeBytes() || got.TreeBytes() == 0 {
		t.Errorf("decoded: engine %v, reads %d want %d, tree %d bytes want %d", got.Engine() == e2, got.Reads(), ie.Reads(), got.TreeBytes(), ie.TreeBytes())
	}
	again, err := got.Encode("chain-1")
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("encoded again: %d bytes (%v), want the same %d", len(again), err, len(b))
	}
	t.Logf("stored evaluation: %d bytes, %d reads, listing %d bytes in memory", len(b), ie.Reads(), ie.TreeBytes())
	for seed := range uint64(6) {
		// Seeds 0-2 were shared before the restart (checkDelta checks the second container of each evaluates
		// nothing; here both are the decoded evaluation's); 3-5 are new layers on the stored image.
		st := checkDelta(t, e2, f, got, seed, 2, imageTarget(), nil)
		if seed < 3 && st.Evaluated != 0 {
			t.Errorf("seed %d, shared before the restart: %+v, want nothing evaluated", seed, st)
		}
	}
}

// A stored evaluation is used only by an engine with the same profiles, waivers and limits, under the same key; a
// damaged one is an error, never a panic or a wrong result.
func TestImageEvalStoredRefused(t *testing.T) {
	_, _, b := storedImageEval(t)
	e := probeEngine(t)
	if _, err := e.DecodeImageEval(b, "chain-2"); !IsStale(err) {
		t.Errorf("another key: %v, want stale", err)
	}
	waived := probeEngine(t)
	waived.Waivers = Waivers{"p01": {Justification: "accepted"}}
	if _, err := waived.DecodeImageEval(b, "chain-1"); !IsStale(err) {
		t.Errorf("other waivers: %v, want stale", err)
	}
	fewer := probeEngine(t)
	fewer.Profiles[0].Controls = fewer.Profiles[0].Controls[1:]
	if _, err := fewer.DecodeImageEval(b, "chain-1"); !IsStale(err) {
		t.Errorf("a control less: %v, want stale", err)
	}
	damaged := map[string][]byte{
		"truncated":   b[:len(b)/2],
		"empty":       nil,
		"read kind":   bytes.Replace(b, []byte(`"0/etc/passwd"`), []byte(`"9/etc/passwd"`), 1),
		"read path":   bytes.Replace(b, []byte(`"0/etc/passwd"`), []byte(`"0/etc/../../x"`), 1),
		"facts index": bytes.Replace(b, []byte(`"facts":0`), []byte(`"facts":7`), 1),
		"tree order":  bytes.Replace(b, []byte(`{"p":"/etc"`), []byte(`{"p":"/zzz"`), 1),
		"oversize":    append(bytes.Repeat([]byte(" "), MaxStoredEvalBytes), b...),
	}
	for name, d := range damaged {
		if bytes.Equal(d, b) {
			t.Errorf("%s: the damage did not apply", name)
			continue
		}
		if ie, err := e.DecodeImageEval(d, "chain-1"); err == nil || IsStale(err) {
			t.Errorf("%s: decoded (%v, %v), want an error", name, ie != nil, err)
		}
	}
}

// FuzzDecodeImageEval: any bytes decode to an error or to an evaluation that evaluates without a panic.
func FuzzDecodeImageEval(f *testing.F) {
	img, _, b := storedImageEval(f)
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	e := probeEngine(f)
	fp := e.Fingerprint()
	f.Add([]byte(fmt.Sprintf(`{"format":1,"engine":%q,"key":"chain-1","facts":[{}],"shared":[{"key":"k","controls":[{"profile":"probes","id":"p00","result":{"profile":"probes","id":"p00"},"reads":["3/"]}]}]}`, fp)))
	f.Fuzz(func(t *testing.T, data []byte) {
		ie, err := e.DecodeImageEval(data, "chain-1")
		if err != nil {
			return
		}
		res := &report.Result{}
		if _, _, err := ie.Evaluate(context.Background(), rootOf(img.root), rootOf(img.root), imageTarget(), nil, res, Delta{Changed: []string{"/"}, Fingerprint: "k"}); err != nil {
			t.Fatal(err)
		}
	})
}
