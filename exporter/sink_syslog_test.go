package exporter

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// syslogReceiver is a real RFC 5425/6587 listener (TCP or TLS) that parses what it gets with an independent RFC 5424
// parser, and can go down and come back on the same address.
type syslogReceiver struct {
	t    *testing.T
	addr string
	tls  *tls.Config
	rec  *receiver

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
	msgs  []*rfc5424.SyslogMessage
	errs  []error
	wg    sync.WaitGroup
}

func startSyslog(t *testing.T, conf *tls.Config) *syslogReceiver {
	s := &syslogReceiver{t: t, addr: "127.0.0.1:0", tls: conf, rec: newReceiver()}
	s.up()
	s.addr = s.l.Addr().String()
	t.Cleanup(func() {
		s.down()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, err := range s.errs {
			t.Errorf("syslog receiver: %v", err)
		}
	})
	return s
}

func (s *syslogReceiver) up() {
	var l net.Listener
	var err error
	if s.tls != nil {
		l, err = tls.Listen("tcp", s.addr, s.tls)
	} else {
		l, err = net.Listen("tcp", s.addr)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.l = l
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				octetcounting.NewParser(syslog.WithMaxMessageLength(1<<20), syslog.WithListener(s.result)).Parse(c)
			}()
		}
	}()
}

func (s *syslogReceiver) result(r *syslog.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Error != nil {
		if msg := r.Error.Error(); !strings.Contains(msg, "closed network connection") && !strings.Contains(msg, "found EOF") {
			s.errs = append(s.errs, r.Error)
		}
		return
	}
	m := r.Message.(*rfc5424.SyslogMessage)
	s.msgs = append(s.msgs, m)
	s.rec.add((*m.StructuredData)["rootscan@32473"]["id"])
}

func (s *syslogReceiver) down() {
	s.mu.Lock()
	if s.l != nil {
		s.l.Close()
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.l, s.conns = nil, nil
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *syslogReceiver) messages() []*rfc5424.SyslogMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

func checkSyslogMessage(t *testing.T, m *rfc5424.SyslogMessage, e Event) {
	t.Helper()
	if *m.Priority != 16*8+3 || *m.Hostname != "node-1" || *m.Appname != "rootscan" || *m.MsgID != "finding.opened" ||
		!m.Timestamp.Equal(e.Time) || m.Version != 1 {
		t.Fatalf("header: pri %d host %s app %s msgid %s time %v", *m.Priority, *m.Hostname, *m.Appname, *m.MsgID, m.Timestamp)
	}
	sd := (*m.StructuredData)["rootscan@32473"]
	if sd["id"] != e.ID || sd["finding"] != e.Finding.ID || sd["kind"] != "vulnerability" {
		t.Fatalf("structured data %v", sd)
	}
	if !strings.HasPrefix(*m.Message, "CEF:0|rootscan|rootscan|") || !strings.Contains(*m.Message, "externalId="+e.ID) {
		t.Fatalf("message %q", *m.Message)
	}
}

// TestSyslogTCPOutage: messages parse as RFC 5424 with octet counting; the receiver restarts and every event
// published while it was down arrives once it is back, in order.
func TestSyslogTCPOutage(t *testing.T) {
	ctx := context.Background()
	rcv := startSyslog(t, nil)
	sink, err := ParseSink("syslog+tcp://" + rcv.addr)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDispatcher(t.TempDir(), []Sink{sink}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	first := testEvents("t", 5)
	d.Publish(ctx, first)
	waitFor(t, "first syslog messages", func() bool { return len(rcv.rec.ids()) == 5 })
	checkSyslogMessage(t, rcv.messages()[0], first[0])

	rcv.down()
	var published []string = ids(first)
	for i := range 3 {
		evs := testEvents("u"+string(rune('a'+i)), 30)
		d.Publish(ctx, evs)
		published = append(published, ids(evs)...)
	}
	waitFor(t, "the sink to be seen down", func() bool { return !d.Stats()[0].Up })
	rcv.up()
	waitFor(t, "every event after the outage", func() bool { return len(rcv.rec.ids()) == len(published) })
	d.Close(ctx)
	if got := rcv.rec.ids(); !slices.Equal(got, published) {
		t.Fatalf("order differs:\ngot  %v\nwant %v", head(got), head(published))
	}
	t.Logf("%d events, %d duplicates", len(published), rcv.rec.duplicates())
}

func TestSyslogTLS(t *testing.T) {
	serverConf, caFile := testPKI(t)
	rcv := startSyslog(t, serverConf)
	_, port, _ := net.SplitHostPort(rcv.addr)
	sink, err := ParseSink("syslog+tls://127.0.0.1:" + port + "?ca=" + caFile)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	evs := testEvents("tls", 20)
	if err := sink.Send(context.Background(), evs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := sink.Send(context.Background(), evs[10:]); err != nil { // same connection, the liveness check passes
		t.Fatal(err)
	}
	waitFor(t, "TLS messages", func() bool { return len(rcv.rec.ids()) == 20 })
	if got := rcv.rec.ids(); !slices.Equal(got, ids(evs)) {
		t.Fatalf("got %v", head(got))
	}
	checkSyslogMessage(t, rcv.messages()[3], evs[3])

	// Without the CA the server is not trusted.
	untrusting, _ := ParseSink("syslog+tls://127.0.0.1:" + port)
	if err := untrusting.Send(context.Background(), evs[:1]); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown CA must fail the handshake: %v", err)
	}
}

func TestSyslogUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sink, err := ParseSink("syslog+udp://" + pc.LocalAddr().String() + "?format=ocsf&facility=local3")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	evs := testEvents("udp", 3)
	if err := sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for i, e := range evs {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		msg, err := rfc5424.NewParser().Parse(buf[:n])
		if err != nil {
			t.Fatalf("datagram %d is not RFC 5424: %v\n%s", i, err, buf[:n])
		}
		m := msg.(*rfc5424.SyslogMessage)
		if (*m.StructuredData)["rootscan@32473"]["id"] != e.ID || *m.Facility != 19 || *m.Severity != 3 {
			t.Fatalf("datagram %d: %+v", i, m)
		}
		if !strings.HasPrefix(*m.Message, `{`) || !strings.Contains(*m.Message, `"class_uid":2002`) {
			t.Fatalf("datagram %d body: %s", i, *m.Message)
		}
	}
}

// testPKI makes a CA and a server certificate for 127.0.0.1; it returns the server's TLS config and the CA's PEM file.
func testPKI(t *testing.T) (*tls.Config, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rootscan test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "syslog"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, caFile
}

func TestSyslogLFFraming(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lines := make(chan string, 10)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	sink, err := ParseSink("syslog+tcp://" + l.Addr().String() + "?framing=lf&format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	evs := testEvents("lf", 2)
	if err := sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		select {
		case line := <-lines:
			msg, err := rfc5424.NewParser().Parse([]byte(line))
			if err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			if id := (*msg.(*rfc5424.SyslogMessage).StructuredData)["rootscan@32473"]["id"]; id != e.ID {
				t.Fatalf("id %s, want %s", id, e.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no line received")
		}
	}
	if _, err := ParseSink("syslog+udp://x?framing=lf"); err == nil {
		t.Fatal("framing on UDP accepted")
	}
}
