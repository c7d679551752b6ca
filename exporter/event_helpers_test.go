package exporter

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func globAll(dir string) ([]string, error) { return filepath.Glob(filepath.Join(dir, "*")) }

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
