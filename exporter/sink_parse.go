package exporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sink delivers batches of events to one destination. Send returns nil only when the destination took every event
// of the batch; the Dispatcher then acknowledges them in the sink's spool, else it retries the same events later.
// Sinks are used by one goroutine at a time.
type Sink interface {
	// Name identifies the sink in logs, metrics and its spool directory: its URL without credentials.
	Name() string
	Send(ctx context.Context, events []Event) error
	Close() error
}

// PermanentError marks a batch the destination refused for good (a 400 for a malformed document): retrying the same
// bytes cannot succeed. The Dispatcher splits such a batch and, for a single refused event, counts it as rejected
// and moves on, so one bad event cannot block a sink forever.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// ParseSink builds a sink from its URL, the syntax of the daemon's --sink flag and config file:
//
//	stdout[?format=F]                             JSON lines (or CEF lines) on standard output
//	file:/path[?format=F&max_size_mb=100&keep=5]  a file rotated by size, keep rotated files kept
//	syslog+udp://host[:514][?format=F]            RFC 5424 over UDP (RFC 5426), one message per datagram
//	syslog+tcp://host[:514][?format=F&framing=lf] RFC 5424 over TCP, octet counting (RFC 6587 3.4.1) or LF-terminated
//	syslog+tls://host[:6514][?ca=FILE&cert=FILE&key=FILE&insecure=1]  RFC 5425 over TLS
//	http(s)://host/path[?format=F&preset=splunk|elasticsearch&token_env=VAR&index=I&timeout=10s&ca=FILE&insecure=1]
//
// F is ecs, ocsf, cef or json (default: cef for syslog, ecs otherwise). Secrets never appear in the URL: token_env
// names the environment variable that holds the Splunk HEC token, the Elasticsearch API key or a bearer token;
// syslog facility is set with facility=local0..local7 (default local0).
func ParseSink(raw string) (Sink, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse sink %q: %w", raw, err)
	}
	q := u.Query()
	known := map[string]bool{"format": true}
	opt := func(k string) string { known[k] = true; return q.Get(k) }
	var sink Sink
	switch {
	case u.Scheme == "" && u.Path == "stdout":
		f, ferr := ParseFormat(cmpOrStr(opt("format"), "ecs"))
		if ferr != nil {
			return nil, ferr
		}
		sink = NewStdoutSink(os.Stdout, f)
	case u.Scheme == "file":
		sink, err = parseFileSink(u, opt)
	case strings.HasPrefix(u.Scheme, "syslog+"):
		sink, err = parseSyslogSink(u, opt)
	case u.Scheme == "http" || u.Scheme == "https":
		sink, err = parseHTTPSink(u, opt)
	default:
		return nil, fmt.Errorf("sink %q: unknown kind (want stdout, file:, syslog+udp://, syslog+tcp://, syslog+tls://, http:// or https://)", redact(u))
	}
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", redact(u), err)
	}
	var unknown []string
	for k := range q {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		sink.Close()
		return nil, fmt.Errorf("sink %s: unknown options %s", redact(u), strings.Join(unknown, ", "))
	}
	return sink, nil
}

// redact is the URL without user info (a password in a webhook URL must not reach logs or metric labels).
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func formatOpt(opt func(string) string, def string) (Format, error) {
	return ParseFormat(cmpOrStr(opt("format"), def))
}

func durationOpt(opt func(string) string, key string, def time.Duration) (time.Duration, error) {
	v := opt(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("option %s=%q: want a positive duration like 10s", key, v)
	}
	return d, nil
}

func intOpt(opt func(string) string, key string, def, lo, hi int) (int, error) {
	v := opt(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("option %s=%q: want an integer from %d to %d", key, v, lo, hi)
	}
	return n, nil
}

func boolOpt(opt func(string) string, key string) (bool, error) {
	v := opt(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("option %s=%q: want true or false", key, v)
	}
	return b, nil
}

// tlsOpt builds the client TLS config from ca, cert, key and insecure options; serverName is the URL's host.
func tlsOpt(opt func(string) string, serverName string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	insecure, err := boolOpt(opt, "insecure")
	if err != nil {
		return nil, err
	}
	conf.InsecureSkipVerify = insecure
	if ca := opt("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s: no PEM certificate", ca)
		}
		conf.RootCAs = pool
	}
	cert, key := opt("cert"), opt("key")
	if (cert == "") != (key == "") {
		return nil, errors.New("options cert and key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

func cmpOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
