package exporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDispatcherHTTP measures events per second from Publish through the disk spool to a local HTTP receiver
// (generic preset, ECS), and the bytes one event takes in the spool and on the wire.
func BenchmarkDispatcherHTTP(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync SyncPolicy
	}{{"fsync", SyncBatch}, {"nosync", SyncNone}} {
		b.Run(bc.name, func(b *testing.B) {
			var events, wire atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var docs []json.RawMessage
				json.Unmarshal(body, &docs)
				wire.Add(int64(len(body)))
				events.Add(int64(len(docs)))
			}))
			defer srv.Close()
			sink, err := ParseSink(srv.URL + "/?format=ecs")
			if err != nil {
				b.Fatal(err)
			}
			d, err := NewDispatcher(b.TempDir(), []Sink{sink}, DispatcherOptions{Spool: SpoolOptions{Sync: bc.sync}, Logger: testLogger(io.Discard)})
			if err != nil {
				b.Fatal(err)
			}
			batch := testEvents("bench", 100)
			var spooled int64
			for _, e := range batch {
				p, _ := json.Marshal(e)
				spooled += int64(len(p)) + recordHeaderSize
			}
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; sent += len(batch) {
				n := min(len(batch), b.N-sent)
				if err := d.Publish(ctx, batch[:n]); err != nil {
					b.Fatal(err)
				}
			}
			for events.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			d.Close(ctx)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(spooled)/float64(len(batch)), "spool-B/event")
			b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/event")
		})
	}
}

// BenchmarkSpool measures the spool alone: append a batch of 100 events, read and acknowledge it.
func BenchmarkSpool(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync SyncPolicy
	}{{"fsync", SyncBatch}, {"nosync", SyncNone}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := OpenSpool(b.TempDir(), SpoolOptions{Sync: bc.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var payloads [][]byte
			for _, e := range testEvents("bench", 100) {
				p, _ := json.Marshal(e)
				payloads = append(payloads, p)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := s.Append(payloads); err != nil {
					b.Fatal(err)
				}
				bt, err := s.Peek(100, 1<<20)
				if err != nil || len(bt.Records) != 100 {
					b.Fatal(err, len(bt.Records))
				}
				if err := s.Ack(bt.End); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
