package exporter

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rootscan/rootscan/internal/textsafe"
	"github.com/rootscan/rootscan/report"
)

// SyslogSink sends RFC 5424 messages over UDP (RFC 5426), TCP (RFC 6587 octet counting, or LF framing with
// ?framing=lf) or TLS (RFC 5425), the
// transports every SIEM collector (rsyslog, syslog-ng, ArcSight and QRadar connectors, Splunk) accepts.
//
// Delivery: UDP has none (a datagram written is a datagram sent). Over TCP and TLS a write that succeeds reached the
// kernel, not the receiver; before each batch the sink checks the connection is still open (a receiver that went
// away shows as EOF) and reconnects, which closes the common loss window after a receiver restart. A receiver that
// dies while a batch is in flight can still lose that batch: syslog has no acknowledgements (RELP would).
type SyslogSink struct {
	name      string
	network   string // udp, tcp or tls
	addr      string
	tls       *tls.Config
	format    Format
	facility  int
	hostname  string
	timeout   time.Duration
	conn      net.Conn
	buf       bytes.Buffer
	maxDgram  int
	hostnameF func() (string, error)
	// lf frames TCP messages with a trailing LF (RFC 6587 non-transparent framing) instead of octet counting, for
	// receivers that only split on newlines. Safe because no format renders a line break inside an event.
	lf bool
}

func parseSyslogSink(u *url.URL, opt func(string) string) (Sink, error) {
	network := strings.TrimPrefix(u.Scheme, "syslog+")
	port := map[string]string{"udp": "514", "tcp": "514", "tls": "6514"}[network]
	if port == "" {
		return nil, fmt.Errorf("unknown syslog transport %q (want udp, tcp or tls)", network)
	}
	if u.Hostname() == "" {
		return nil, errors.New("syslog sink needs a host")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	f, err := formatOpt(opt, "cef")
	if err != nil {
		return nil, err
	}
	facility := 16 // local0
	if v := opt("facility"); v != "" {
		n, ok := strings.CutPrefix(v, "local")
		i, err := strconv.Atoi(n)
		if !ok || err != nil || i < 0 || i > 7 {
			return nil, fmt.Errorf("option facility=%q: want local0..local7", v)
		}
		facility = 16 + i
	}
	lf := false
	switch v := opt("framing"); v {
	case "", "octet":
	case "lf":
		if network == "udp" {
			return nil, errors.New("option framing applies to tcp and tls only")
		}
		lf = true
	default:
		return nil, fmt.Errorf("option framing=%q: want octet or lf", v)
	}
	timeout, err := durationOpt(opt, "timeout", 10*time.Second)
	if err != nil {
		return nil, err
	}
	var conf *tls.Config
	if network == "tls" {
		if conf, err = tlsOpt(opt, u.Hostname()); err != nil {
			return nil, err
		}
	}
	s := NewSyslogSink(network, addr, conf, f)
	s.facility, s.timeout, s.lf = facility, timeout, lf
	if lf {
		s.name += "&framing=lf"
	}
	return s, nil
}

// NewSyslogSink sends to addr over network ("udp", "tcp" or "tls", with conf for tls) with events rendered by f.
func NewSyslogSink(network, addr string, conf *tls.Config, f Format) *SyslogSink {
	return &SyslogSink{
		name: "syslog+" + network + "://" + addr + "?format=" + f.Name(), network: network, addr: addr, tls: conf,
		format: f, facility: 16, timeout: 10 * time.Second, maxDgram: 65000, hostnameF: os.Hostname,
	}
}

// Name is the sink URL.
func (s *SyslogSink) Name() string { return s.name }

// Send writes the batch: one datagram per event over UDP, one write of all octet-counted frames over TCP and TLS.
func (s *SyslogSink) Send(ctx context.Context, events []Event) error {
	if err := s.connect(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	s.buf.Reset()
	for _, e := range events {
		msg, err := s.message(e)
		if err != nil {
			return &PermanentError{Err: err}
		}
		if s.network == "udp" {
			if len(msg) > s.maxDgram {
				msg = msg[:s.maxDgram] // RFC 5426: a receiver may truncate too; a too-large datagram is not sent at all
			}
			if _, err := s.conn.Write(msg); err != nil {
				s.reset()
				return fmt.Errorf("send syslog datagram to %s: %w", s.addr, err)
			}
			continue
		}
		if s.lf {
			s.buf.Write(msg)
			s.buf.WriteByte('\n')
			continue
		}
		s.buf.WriteString(strconv.Itoa(len(msg)))
		s.buf.WriteByte(' ')
		s.buf.Write(msg)
	}
	if s.network != "udp" {
		if _, err := s.conn.Write(s.buf.Bytes()); err != nil {
			s.reset()
			return fmt.Errorf("send syslog to %s: %w", s.addr, err)
		}
	}
	return nil
}

// connect dials when there is no connection, and for stream transports drops a connection the receiver closed.
func (s *SyslogSink) connect(ctx context.Context) error {
	if s.conn != nil && s.network != "udp" && !s.alive() {
		s.reset()
	}
	if s.conn != nil {
		return nil
	}
	d := &net.Dialer{Timeout: s.timeout}
	var err error
	switch s.network {
	case "tls":
		td := &tls.Dialer{NetDialer: d, Config: s.tls}
		s.conn, err = td.DialContext(ctx, "tcp", s.addr)
	default:
		s.conn, err = d.DialContext(ctx, s.network, s.addr)
	}
	if err != nil {
		s.conn = nil
		return fmt.Errorf("connect to syslog %s: %w", s.addr, err)
	}
	return nil
}

// alive reads with a short deadline: a syslog receiver never sends, so a timeout means open, EOF or an error means
// the receiver closed the connection. (TLS post-handshake messages are consumed by the TLS layer.)
func (s *SyslogSink) alive() bool {
	s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := s.conn.Read(b[:])
	s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return err == nil // unexpected data: still open
}

func (s *SyslogSink) reset() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// message renders one RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG, with the event and
// finding IDs as structured data (under the documentation enterprise number 32473 until rootscan has its own) so
// a collector can de-duplicate without parsing MSG.
func (s *SyslogSink) message(e Event) ([]byte, error) {
	body, err := s.format.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("render event %s: %w", e.ID, err)
	}
	host := e.Node
	if host == "" {
		host, _ = s.hostnameF()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s rootscan - %s [rootscan@32473 id=\"%s\"", s.facility*8+syslogSeverity(e),
		e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), syslogToken(host, 255), syslogToken(string(e.Type), 32),
		sdEscape(e.ID))
	if e.Finding != nil {
		fmt.Fprintf(&b, " finding=\"%s\" kind=\"%s\"", sdEscape(e.Finding.ID), sdEscape(string(e.Finding.Kind)))
	}
	b.WriteString("] ")
	b.Write(body)
	return b.Bytes(), nil
}

// syslogSeverity: critical 2 (crit), high 3 (err), medium 4 (warning), low 5 (notice), else 6 (informational).
func syslogSeverity(e Event) int {
	switch eventSeverity(e) {
	case report.SeverityCritical:
		return 2
	case report.SeverityHigh:
		return 3
	case report.SeverityMedium:
		return 4
	case report.SeverityLow:
		return 5
	}
	return 6
}

// syslogToken makes a header field of printable US-ASCII without spaces, at most n bytes ("-" when empty).
func syslogToken(v string, n int) string {
	b := []byte(v)
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// sdEscape escapes a structured-data parameter value: '"', '\' and ']' take a backslash (RFC 5424 6.3.3), after
// control characters and line separators are shown as their escapes (textsafe.Escape): RFC 5424 allows them in a
// value, but a collector with newline framing would split the message at them.
func sdEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(textsafe.Escape(v))
}

// Close closes the connection.
func (s *SyslogSink) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
