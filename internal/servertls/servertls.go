// Package servertls is the TLS side of the daemon's /metrics server: a server certificate and, optionally, a client
// CA whose certificates alone may connect, all read from files and read again when the files change.
//
// Rotation is the point: cert-manager (or any Secret update) replaces the mounted files in place, and a scanner
// that kept the certificate it started with would serve an expired one until someone restarted every pod of the
// DaemonSet. The files are looked at on each TLS handshake (a stat of three files, a few microseconds, against
// scrapes that come every 15-60 s) and parsed again only when one of them changed; a half-written or broken
// replacement is refused and the last good certificate stays in use, so a rotation can never take /metrics down.
package servertls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names what the server reads. CertFile and KeyFile are PEM; ClientCAFile, when set, is a PEM bundle of the
// CAs whose client certificates are accepted, and then a client without such a certificate cannot connect.
type Files struct {
	CertFile, KeyFile, ClientCAFile string
}

// Enabled says whether any TLS file was given.
func (f Files) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.ClientCAFile != "" }

func (f Files) validate() error {
	if f.CertFile == "" || f.KeyFile == "" {
		return errors.New("TLS needs both a certificate and a key file")
	}
	return nil
}

// Loader hands out the current TLS configuration, re-read from Files whenever one of them changed.
type Loader struct {
	files Files
	log   *slog.Logger

	mu      sync.Mutex
	stamp   [3]fileStamp // of the files current was built from
	current *tls.Config
	failed  [3]fileStamp // of the files that last failed to load, so a broken file is logged once, not per handshake
}

// fileStamp is what says a file changed: Kubernetes replaces a Secret volume's files by swapping a symlink, which
// gives the new files a new modification time; the size catches a rewrite within the clock's resolution.
type fileStamp struct {
	mod  time.Time
	size int64
}

// New reads the files once, failing when they do not make a usable configuration, so a wrong path or a key that
// does not match the certificate stops the daemon at start rather than at the first scrape.
func New(files Files, log *slog.Logger) (*Loader, error) {
	if err := files.validate(); err != nil {
		return nil, err
	}
	l := &Loader{files: files, log: log}
	stamp, err := l.stamps()
	if err != nil {
		return nil, err
	}
	conf, err := l.load()
	if err != nil {
		return nil, err
	}
	l.stamp, l.current = stamp, conf
	return l, nil
}

// Config is the tls.Config to serve with: every handshake gets the configuration of the files as they are now.
func (l *Loader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.get(), nil
		},
	}
}

// get returns the configuration of the current files, reloading it when they changed; on a failed reload it keeps
// the last good one.
func (l *Loader) get() *tls.Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	stamp, err := l.stamps()
	if err != nil || stamp == l.stamp {
		if err != nil && stamp != l.failed {
			l.failed = stamp
			l.log.Warn("metrics TLS files not readable; serving the last good certificate", "err", err)
		}
		return l.current
	}
	conf, err := l.load()
	if err != nil {
		if stamp != l.failed {
			l.failed = stamp
			l.log.Warn("metrics TLS files changed but do not load; serving the last good certificate", "err", err)
		}
		return l.current
	}
	l.stamp, l.current, l.failed = stamp, conf, [3]fileStamp{}
	l.log.Info("metrics TLS certificate reloaded", "cert", l.files.CertFile, "notAfter", notAfter(conf))
	return conf
}

func (l *Loader) stamps() ([3]fileStamp, error) {
	var out [3]fileStamp
	for i, name := range []string{l.files.CertFile, l.files.KeyFile, l.files.ClientCAFile} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return out, fmt.Errorf("metrics TLS: %w", err)
		}
		out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

// load builds a configuration from the files: TLS 1.2 or later, and with a client CA, a verified client
// certificate required.
func (l *Loader) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(l.files.CertFile, l.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("metrics TLS certificate %s: %w", l.files.CertFile, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if l.files.ClientCAFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(l.files.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("metrics TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("metrics TLS client CA %s: no PEM certificate in it", l.files.ClientCAFile)
	}
	conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return conf, nil
}

func notAfter(conf *tls.Config) time.Time {
	if c := conf.Certificates[0].Leaf; c != nil {
		return c.NotAfter
	}
	return time.Time{}
}
