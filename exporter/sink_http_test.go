package exporter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootscan/rootscan/report"
)

func testEvents(prefix string, n int) []Event {
	var out []Event
	for i := range n {
		v := report.Vulnerability{ID: fmt.Sprintf("CVE-2025-%04d", i), Package: "openssl", Version: "3.0.1", Ecosystem: "Debian", Severity: report.SeverityHigh}
		out = append(out, Event{ID: fmt.Sprintf("%s-%04d", prefix, i), Type: EventFindingOpened, Time: t0, Node: "node-1",
			Namespace: "shop", Pod: "web-1", Container: "app", ContainerID: "c0ffee", Image: "web:1", ImageDigest: "sha256:abcd",
			Finding: &Finding{ID: "f" + prefix + fmt.Sprint(i), Kind: KindVulnerability, Title: v.ID + " in openssl", Severity: v.Severity, Vulnerability: &v}})
	}
	return out
}

func ids(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// receiver collects event IDs in arrival order and counts duplicates, like a SIEM that de-duplicates by ID.
type receiver struct {
	mu    sync.Mutex
	order []string
	seen  map[string]int
}

func newReceiver() *receiver { return &receiver{seen: map[string]int{}} }

func (r *receiver) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[id] == 0 {
		r.order = append(r.order, id)
	}
	r.seen[id]++
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.order)
}

func (r *receiver) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.seen {
		n += c - 1
	}
	return n
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// webhook is a real HTTP server on a fixed address that can go down and come back.
type webhook struct {
	t       *testing.T
	addr    string
	handler http.Handler
	srv     *httptest.Server
}

func startWebhook(t *testing.T, h http.Handler) *webhook {
	w := &webhook{t: t, handler: h, addr: "127.0.0.1:0"}
	w.up()
	w.addr = w.srv.Listener.Addr().String()
	t.Cleanup(w.down)
	return w
}

func (w *webhook) up() {
	l, err := net.Listen("tcp", w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.srv = httptest.NewUnstartedServer(w.handler)
	w.srv.Listener.Close()
	w.srv.Listener = l
	w.srv.Start()
}

func (w *webhook) down() {
	if w.srv != nil {
		w.srv.CloseClientConnections()
		w.srv.Close()
		w.srv = nil
	}
}

// ecsArrayHandler accepts the generic preset's JSON array of ECS documents.
func ecsArrayHandler(r *receiver, refuse string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var docs []map[string]any
		if err := json.NewDecoder(req.Body).Decode(&docs); err != nil || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		for _, d := range docs {
			if field(d, "event.id") == refuse {
				http.Error(w, "refused "+refuse, http.StatusBadRequest)
				return
			}
		}
		for _, d := range docs {
			r.add(field(d, "event.id").(string))
		}
	}
}

func fastOpts() DispatcherOptions {
	return DispatcherOptions{BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, BatchEvents: 40,
		Logger: testLogger(io.Discard)}
}

// TestDispatcherHTTPOutage: the receiver goes down, events keep coming, the daemon even restarts; when the receiver
// is back every event arrives, in order.
func TestDispatcherHTTPOutage(t *testing.T) {
	ctx := context.Background()
	rec := newReceiver()
	wh := startWebhook(t, ecsArrayHandler(rec, ""))
	state := t.TempDir()
	newDispatcher := func() *Dispatcher {
		sink, err := ParseSink("http://" + wh.addr + "/ingest?format=ecs")
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDispatcher(state, []Sink{sink}, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := newDispatcher()
	var published []string
	publish := func(evs []Event) {
		if err := d.Publish(ctx, evs); err != nil {
			t.Fatal(err)
		}
		published = append(published, ids(evs)...)
	}
	publish(testEvents("a", 10))
	waitFor(t, "first events", func() bool { return len(rec.ids()) == 10 })

	wh.down()
	publish(testEvents("b", 50))
	waitFor(t, "the sink to be seen down", func() bool { st := d.Stats()[0]; return !st.Up && st.Failed > 0 })
	publish(testEvents("c", 50))
	// The daemon restarts during the outage: spooled events survive it.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	d.Close(cctx)
	cancel()
	d = newDispatcher()
	if st := d.Stats()[0]; st.Pending != 100 {
		t.Fatalf("pending after restart = %d, want 100", st.Pending)
	}
	publish(testEvents("d", 50))

	wh.up()
	waitFor(t, "every event after the outage", func() bool { return len(rec.ids()) == len(published) })
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.ids(); !slices.Equal(got, published) {
		t.Fatalf("order differs:\ngot  %v\nwant %v", head(got), head(published))
	}
	st := d.Stats()[0]
	if st.Pending != 0 || st.Dropped != 0 || st.Sent != 150 || !st.Up {
		t.Fatalf("stats after recovery: %+v", st)
	}
	t.Logf("%d events, %d duplicates, %d failed attempts", len(published), rec.duplicates(), st.Failed)
}

func TestDispatcherSkipsRefusedEvent(t *testing.T) {
	ctx := context.Background()
	rec := newReceiver()
	wh := startWebhook(t, ecsArrayHandler(rec, "x-0005"))
	sink, _ := ParseSink("http://" + wh.addr + "/")
	d, err := NewDispatcher(t.TempDir(), []Sink{sink}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents("x", 12)
	d.Publish(ctx, evs)
	waitFor(t, "the other events", func() bool { return len(rec.ids()) == 11 })
	d.Close(ctx)
	want := slices.Delete(ids(evs), 5, 6)
	if got := rec.ids(); !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if st := d.Stats()[0]; st.Rejected != 1 || st.Sent != 11 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSplunkHEC(t *testing.T) {
	t.Setenv("HEC_TOKEN", "s3cret")
	rec := newReceiver()
	var mu sync.Mutex
	var envelopes []map[string]any
	wh := startWebhook(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/services/collector/event" || req.Header.Get("Authorization") != "Splunk s3cret" {
			http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusUnauthorized)
			return
		}
		dec := json.NewDecoder(req.Body)
		for dec.More() {
			var env map[string]any
			if err := dec.Decode(&env); err != nil {
				http.Error(w, `{"text":"Invalid data format","code":6}`, http.StatusBadRequest)
				return
			}
			mu.Lock()
			envelopes = append(envelopes, env)
			mu.Unlock()
			rec.add(field(env, "event.metadata.uid").(string))
		}
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	sink, err := ParseSink("http://" + wh.addr + "?preset=splunk&format=ocsf&token_env=HEC_TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sink.Name(), "s3cret") {
		t.Fatal("the token must not appear in the sink name")
	}
	evs := testEvents("h", 3)
	if err := sink.Send(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if got := rec.ids(); !slices.Equal(got, ids(evs)) {
		t.Fatalf("got %v", got)
	}
	checkFields(t, envelopes[0], map[string]any{"host": "node-1", "source": "rootscan", "sourcetype": "rootscan:ocsf",
		"time": float64(t0.Unix()), "event.class_uid": 2002})

	t.Setenv("HEC_TOKEN", "wrong")
	bad, _ := ParseSink("http://" + wh.addr + "?preset=splunk&token_env=HEC_TOKEN")
	err = bad.Send(context.Background(), evs)
	if err == nil || isPermanent(err) {
		t.Fatalf("a 401 must be a retryable error (fix the token, events wait): %v", err)
	}
}

func isPermanent(err error) bool {
	_, ok := err.(*PermanentError)
	return ok
}

func TestElasticsearchBulk(t *testing.T) {
	var mu sync.Mutex
	stored := map[string]map[string]any{}
	requests := 0
	wh := startWebhook(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/_bulk" || req.Header.Get("Content-Type") != "application/x-ndjson" || req.Header.Get("Authorization") != "ApiKey k" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		requests++
		sc := bufio.NewScanner(req.Body)
		sc.Buffer(nil, 1<<20)
		var items []string
		for i := 0; sc.Scan(); i++ {
			var action map[string]map[string]string
			json.Unmarshal(sc.Bytes(), &action)
			sc.Scan()
			var doc map[string]any
			json.Unmarshal(sc.Bytes(), &doc)
			id, index := action["create"]["_id"], action["create"]["_index"]
			status := 201
			switch {
			case index != "findings":
				status = 404
			case stored[id] != nil:
				status = 409
			case requests == 1 && i == 1:
				status = 429 // the second document is throttled on the first request
			default:
				stored[id] = doc
			}
			items = append(items, fmt.Sprintf(`{"create":{"_id":%q,"status":%d}}`, id, status))
		}
		fmt.Fprintf(w, `{"took":1,"errors":%v,"items":[%s]}`, requests == 1, strings.Join(items, ","))
	}))
	t.Setenv("ES_KEY", "k")
	sink, err := ParseSink("http://" + wh.addr + "?preset=elasticsearch&index=findings&token_env=ES_KEY")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDispatcher(t.TempDir(), []Sink{sink}, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents("es", 3)
	d.Publish(context.Background(), evs)
	waitFor(t, "bulk delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(stored) == 3 })
	d.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if requests != 2 {
		t.Fatalf("want the throttled batch retried once, got %d requests", requests)
	}
	for _, e := range evs {
		if field(stored[e.ID], "event.id") != e.ID {
			t.Fatalf("document %s not stored under its event ID", e.ID)
		}
	}
	if _, err := ParseSink("http://x?preset=elasticsearch&format=cef"); err == nil {
		t.Fatal("CEF into Elasticsearch must be refused")
	}
}

func TestStdoutAndFileSinks(t *testing.T) {
	var buf bytes.Buffer
	f, _ := ParseFormat("cef")
	s := NewStdoutSink(&buf, f)
	if err := s.Send(context.Background(), testEvents("s", 3)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "CEF:0|rootscan|rootscan|") || !strings.Contains(lines[2], "externalId=s-0002") {
		t.Fatalf("stdout lines: %q", lines)
	}

	dir := t.TempDir()
	fs, err := ParseSink("file:" + dir + "/events.json?max_size_mb=1&keep=2")
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents("f", 400)
	for i := 0; i < 20; i++ { // about 4 MB of ECS lines: three rotations
		if err := fs.Send(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	fs.Close()
	waitFor(t, "rotated files beyond keep=2 to be removed", func() bool {
		m, _ := globAll(dir)
		return len(m) == 3
	})
	m, _ := globAll(dir)
	for _, p := range m {
		data, _ := readFile(p)
		if len(data) > 1<<20 {
			t.Fatalf("%s is %d bytes, over max_size_mb=1", p, len(data))
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if !json.Valid([]byte(line)) {
				t.Fatalf("%s holds a broken line: %.80s", p, line)
			}
		}
	}
}

func TestParseSink(t *testing.T) {
	t.Setenv("TOK", "t")
	good := map[string]string{
		"stdout":                                        "stdout?format=ecs",
		"stdout?format=ocsf":                            "stdout?format=ocsf",
		"file:/var/log/rootscan.json":                   "file:/var/log/rootscan.json?format=ecs&keep=5&max_size_mb=100",
		"syslog+udp://siem.local":                       "syslog+udp://siem.local:514?format=cef",
		"syslog+tcp://siem.local:1514?format=json":      "syslog+tcp://siem.local:1514?format=json",
		"syslog+tls://siem.local?facility=local4":       "syslog+tls://siem.local:6514?format=cef",
		"http://user:pw@hook.local/x?token_env=TOK":     "http://hook.local/x?format=ecs",
		"https://es.local:9200?preset=elasticsearch":    "https://es.local:9200/_bulk?format=ecs&preset=elasticsearch&index=rootscan-events",
		"https://hec.local?preset=splunk&token_env=TOK": "https://hec.local/services/collector/event?format=ecs&preset=splunk",
	}
	for in, name := range good {
		s, err := ParseSink(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if s.Name() != name {
			t.Errorf("%s: name %q, want %q", in, s.Name(), name)
		}
		s.Close()
	}
	for _, bad := range []string{"kafka://x", "file:relative.log", "syslog+sctp://x", "syslog+tcp://", "stdout?format=xml",
		"http://x?preset=datadog", "http://x?token_env=UNSET_VAR_X", "https://hec?preset=splunk", "stdout?colour=1",
		"syslog+udp://x?facility=kern", "http://x?timeout=-1s", "syslog+tls://x?ca=/nonexistent"} {
		if _, err := ParseSink(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
