package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"

	"gopkg.in/natefinch/lumberjack.v2"
)

// FileSink appends one event per line to a file rotated by size, keeping a bounded number of rotated files, for
// nodes where a log agent tails files. Rotation is lumberjack's (the de-facto standard Go rotating writer): rotated
// files are named path-<timestamp>.ext and the oldest beyond Keep are deleted.
type FileSink struct {
	name   string
	format Format
	out    *lumberjack.Logger
	buf    bytes.Buffer
}

// NewFileSink writes events rendered by f to path, rotating at maxSizeMB and keeping keep rotated files.
func NewFileSink(path string, f Format, maxSizeMB, keep int) (*FileSink, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("file sink path %q is not absolute", path)
	}
	return &FileSink{
		name:   "file:" + path + "?format=" + f.Name() + "&keep=" + strconv.Itoa(keep) + "&max_size_mb=" + strconv.Itoa(maxSizeMB),
		format: f,
		out:    &lumberjack.Logger{Filename: path, MaxSize: maxSizeMB, MaxBackups: keep},
	}, nil
}

func parseFileSink(u *url.URL, opt func(string) string) (Sink, error) {
	path := cmpOrStr(u.Path, u.Opaque)
	f, err := formatOpt(opt, "ecs")
	if err != nil {
		return nil, err
	}
	size, err := intOpt(opt, "max_size_mb", 100, 1, 1<<20)
	if err != nil {
		return nil, err
	}
	keep, err := intOpt(opt, "keep", 5, 1, 1000)
	if err != nil {
		return nil, err
	}
	return NewFileSink(path, f, size, keep)
}

// Name is the file path and its options.
func (s *FileSink) Name() string { return s.name }

// Send appends the batch, one write per event so rotation never splits a line. Events reach the page cache: they
// survive a crash of rootscan, and a log agent reading the file sees them at once.
func (s *FileSink) Send(_ context.Context, events []Event) error {
	for _, e := range events {
		line, err := s.format.Marshal(e)
		if err != nil {
			return &PermanentError{Err: fmt.Errorf("render event %s: %w", e.ID, err)}
		}
		s.buf.Reset()
		s.buf.Write(line)
		s.buf.WriteByte('\n')
		if _, err := s.out.Write(s.buf.Bytes()); err != nil {
			return fmt.Errorf("write event to %s: %w", s.out.Filename, err)
		}
	}
	return nil
}

// Close closes the file.
func (s *FileSink) Close() error { return errors.Join(s.out.Close()) }
