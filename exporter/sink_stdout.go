package exporter

import (
	"bufio"
	"context"
	"fmt"
	"io"
)

// StdoutSink writes one event per line to a writer (standard output in the daemon), for log shippers (Fluent Bit,
// Vector, Filebeat) that already collect container output: no network configuration at all.
type StdoutSink struct {
	w      *bufio.Writer
	format Format
}

// NewStdoutSink writes events rendered by f to w.
func NewStdoutSink(w io.Writer, f Format) *StdoutSink {
	return &StdoutSink{w: bufio.NewWriterSize(w, 64<<10), format: f}
}

// Name is "stdout" and the format.
func (s *StdoutSink) Name() string { return "stdout?format=" + s.format.Name() }

// Send writes the batch and flushes it; a write error (a closed pipe) is retried by the dispatcher.
func (s *StdoutSink) Send(_ context.Context, events []Event) error {
	for _, e := range events {
		line, err := s.format.Marshal(e)
		if err != nil {
			return &PermanentError{Err: fmt.Errorf("render event %s: %w", e.ID, err)}
		}
		s.w.Write(line)
		s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write events to stdout: %w", err)
	}
	return nil
}

// Close flushes what is buffered.
func (s *StdoutSink) Close() error { return s.w.Flush() }
