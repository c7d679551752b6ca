// Package servertls is the TLS side of the daemon's /metrics server: a server certificate and, optionally, a client
// CA whose certificates alone may connect, all read from files and read again when the files change.
//
// Rotation is the point: cert-manager (or any Secret update) replaces the mounted files, and a scanner that kept the
// certificate it started with would serve an expired one until someone restarted every pod of the DaemonSet. The
// files are read on each TLS handshake (three small files, microseconds, against a handshake's milliseconds and
// scrapes that come every 15-60 s over kept-alive connections) and the configuration is built again only when their
// bytes changed. Comparing bytes rather than modification times catches a replacement within the clock's
// resolution, and the configuration is built from exactly the bytes compared. A half-written or broken replacement
// is refused and the last good certificate stays in use, so a rotation can never take /metrics down.
package servertls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
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

// Loader hands out the current TLS configuration, built again whenever the files' contents changed.
type Loader struct {
	files Files
	log   *slog.Logger

	mu      sync.Mutex
	loaded  pemFiles // what current was built from
	current *tls.Config
	failed  pemFiles // what last failed to load, so a broken file is logged once, not at every handshake
	missing bool     // the files could not be read at the last handshake, logged once until they can
}

// pemFiles are the contents of Files.
type pemFiles struct {
	cert, key, clientCA []byte
}

func (p pemFiles) equal(o pemFiles) bool {
	return bytes.Equal(p.cert, o.cert) && bytes.Equal(p.key, o.key) && bytes.Equal(p.clientCA, o.clientCA)
}

// maxPEM bounds what is read of each file: a certificate chain or CA bundle is kilobytes; a larger file is a mistake.
const maxPEM = 1 << 20

// New reads the files once, failing when they do not make a usable configuration, so a wrong path or a key that
// does not match the certificate stops the daemon at start rather than at the first scrape.
func New(files Files, log *slog.Logger) (*Loader, error) {
	if err := files.validate(); err != nil {
		return nil, err
	}
	l := &Loader{files: files, log: log}
	pems, err := l.read()
	if err != nil {
		return nil, err
	}
	conf, err := l.load(pems)
	if err != nil {
		return nil, err
	}
	l.loaded, l.current = pems, conf
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

// get returns the configuration of the current files, building it again when they changed; when they cannot be
// read or do not load, it keeps the last good one.
func (l *Loader) get() *tls.Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	pems, err := l.read()
	if err != nil {
		if !l.missing {
			l.log.Warn("metrics TLS files not readable; serving the last good certificate", "err", err)
		}
		l.missing = true
		return l.current
	}
	l.missing = false
	if pems.equal(l.loaded) {
		return l.current
	}
	conf, err := l.load(pems)
	if err != nil {
		if !pems.equal(l.failed) {
			l.failed = pems
			l.log.Warn("metrics TLS files changed but do not load; serving the last good certificate", "err", err)
		}
		return l.current
	}
	l.loaded, l.current, l.failed = pems, conf, pemFiles{}
	l.log.Info("metrics TLS certificate reloaded", "cert", l.files.CertFile, "notAfter", notAfter(conf))
	return conf
}

func (l *Loader) read() (pemFiles, error) {
	var p pemFiles
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{l.files.CertFile, &p.cert}, {l.files.KeyFile, &p.key}, {l.files.ClientCAFile, &p.clientCA}} {
		if f.name == "" {
			continue
		}
		b, err := readBounded(f.name)
		if err != nil {
			return pemFiles{}, err
		}
		*f.dst = b
	}
	return p, nil
}

func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("metrics TLS: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("metrics TLS: read %s: %w", name, err)
	}
	if len(b) > maxPEM {
		return nil, fmt.Errorf("metrics TLS: %s is over %d bytes", name, maxPEM)
	}
	return b, nil
}

// load builds a configuration from the files' contents: TLS 1.2 or later, and with a client CA, a verified client
// certificate required.
func (l *Loader) load(p pemFiles) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		return nil, fmt.Errorf("metrics TLS certificate %s and key %s: %w", l.files.CertFile, l.files.KeyFile, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if l.files.ClientCAFile == "" {
		return conf, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.clientCA) {
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
