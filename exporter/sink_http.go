package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// HTTP presets.
const (
	PresetGeneric       = ""
	PresetSplunk        = "splunk"
	PresetElasticsearch = "elasticsearch"
)

// HTTPSink posts batches of events to a webhook. Generic: a JSON array of rendered events (CEF: text lines).
// Splunk: HTTP Event Collector envelopes to /services/collector/event with "Authorization: Splunk <token>".
// Elasticsearch: a _bulk NDJSON body of create actions whose _id is the event ID, so Elasticsearch itself
// de-duplicates re-sent events (a 409 conflict counts as delivered).
//
// Responses: 2xx is delivered; 400, 413 and 422 refuse the batch for good (PermanentError: the dispatcher splits the
// batch and skips a single refused event); anything else (401/403 until the token is fixed, 429, 5xx, timeouts,
// connection errors) is retried with backoff while the spool keeps the events.
type HTTPSink struct {
	name   string
	url    string
	preset string
	format Format
	index  string
	auth   string
	user   *url.Userinfo
	client *http.Client
	buf    bytes.Buffer
}

// HTTPOptions configure NewHTTPSink; zero values take defaults.
type HTTPOptions struct {
	Preset string // PresetGeneric, PresetSplunk or PresetElasticsearch
	Format Format // default ECS
	// Token is the Splunk HEC token, the Elasticsearch API key ("ApiKey <token>") or a bearer token (generic).
	Token string
	// Index is the Elasticsearch index or data stream (default "rootscan-events").
	Index   string
	Timeout time.Duration // per request, default 10s
	// Transport carries the TLS settings (ca, cert, insecure); default http.DefaultTransport.
	Transport http.RoundTripper
}

func parseHTTPSink(u *url.URL, opt func(string) string) (Sink, error) {
	o := HTTPOptions{Preset: opt("preset"), Index: opt("index")}
	switch o.Preset {
	case PresetGeneric, PresetSplunk, PresetElasticsearch:
	default:
		return nil, fmt.Errorf("option preset=%q: want splunk or elasticsearch", o.Preset)
	}
	var err error
	if o.Format, err = formatOpt(opt, "ecs"); err != nil {
		return nil, err
	}
	if env := opt("token_env"); env != "" {
		if o.Token = os.Getenv(env); o.Token == "" {
			return nil, fmt.Errorf("token_env: environment variable %s is empty", env)
		}
	}
	if o.Timeout, err = durationOpt(opt, "timeout", 10*time.Second); err != nil {
		return nil, err
	}
	conf, err := tlsOpt(opt, u.Hostname())
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	o.Transport = tr
	// The sink's own options are not the endpoint's query.
	base := *u
	q := u.Query()
	for k := range q {
		if map[string]bool{"format": true, "preset": true, "token_env": true, "index": true, "timeout": true,
			"ca": true, "cert": true, "key": true, "insecure": true}[k] {
			q.Del(k)
		}
	}
	base.RawQuery = q.Encode()
	return NewHTTPSink(base.String(), o)
}

// NewHTTPSink posts to rawURL; an empty path takes the preset's (/services/collector/event, /_bulk).
func NewHTTPSink(rawURL string, o HTTPOptions) (*HTTPSink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse webhook URL: %w", err)
	}
	if o.Format == nil {
		o.Format = ecsFormat{version: productVersion()}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if def := map[string]string{PresetSplunk: "/services/collector/event", PresetElasticsearch: "/_bulk"}[o.Preset]; def != "" && (u.Path == "" || u.Path == "/") {
		u.Path = def
	}
	s := &HTTPSink{preset: o.Preset, format: o.Format, index: cmpOrStr(o.Index, "rootscan-events"), user: u.User}
	switch o.Preset {
	case PresetElasticsearch:
		if !o.Format.JSON() {
			return nil, errors.New("the elasticsearch preset needs a JSON format (ecs, ocsf or json)")
		}
		if o.Token != "" {
			s.auth = "ApiKey " + o.Token
		}
	case PresetSplunk:
		if o.Token == "" {
			return nil, errors.New("the splunk preset needs a HEC token (token_env=VAR)")
		}
		s.auth = "Splunk " + o.Token
	default:
		if o.Token != "" {
			s.auth = "Bearer " + o.Token
		}
	}
	u.User = nil
	s.url = u.String()
	name := s.url + "?format=" + o.Format.Name()
	if u.RawQuery != "" {
		name = s.url + "&format=" + o.Format.Name()
	}
	if o.Preset != "" {
		name += "&preset=" + o.Preset
	}
	if o.Preset == PresetElasticsearch {
		name += "&index=" + s.index
	}
	s.name = name
	s.client = &http.Client{Timeout: o.Timeout, Transport: cmpOrRT(o.Transport, http.DefaultTransport)}
	return s, nil
}

// Name is the endpoint URL (without credentials) and the options that shape what it receives.
func (s *HTTPSink) Name() string { return s.name }

// Send posts the batch and classifies the response (see HTTPSink).
func (s *HTTPSink) Send(ctx context.Context, events []Event) error {
	contentType, err := s.body(events)
	if err != nil {
		return &PermanentError{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(s.buf.Bytes()))
	if err != nil {
		return fmt.Errorf("build request to %s: %w", s.url, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "rootscan/"+productVersion())
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	} else if s.user != nil {
		pw, _ := s.user.Password()
		req.SetBasicAuth(s.user.Username(), pw)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post %d events to %s: %w", len(events), s.url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("post %d events to %s: %s: %s", len(events), s.url, resp.Status, truncate(strings.TrimSpace(string(body)), 512))
		switch resp.StatusCode {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return &PermanentError{Err: err}
		}
		return err
	}
	if s.preset == PresetElasticsearch {
		return bulkResult(body)
	}
	return nil
}

// body renders the batch into s.buf and returns its content type.
func (s *HTTPSink) body(events []Event) (string, error) {
	s.buf.Reset()
	switch s.preset {
	case PresetSplunk:
		for _, e := range events {
			rec, err := s.format.Marshal(e)
			if err != nil {
				return "", err
			}
			var ev any = json.RawMessage(rec)
			if !s.format.JSON() {
				ev = string(rec)
			}
			env := map[string]any{"time": float64(e.Time.UnixMilli()) / 1000, "host": e.Node, "source": "rootscan",
				"sourcetype": "rootscan:" + s.format.Name(), "event": ev}
			if err := json.NewEncoder(&s.buf).Encode(env); err != nil {
				return "", err
			}
		}
		return "application/json", nil
	case PresetElasticsearch:
		for _, e := range events {
			rec, err := s.format.Marshal(e)
			if err != nil {
				return "", err
			}
			action := map[string]map[string]string{"create": {"_index": s.index, "_id": e.ID}}
			if err := json.NewEncoder(&s.buf).Encode(action); err != nil {
				return "", err
			}
			s.buf.Write(rec)
			s.buf.WriteByte('\n')
		}
		return "application/x-ndjson", nil
	}
	if !s.format.JSON() {
		for _, e := range events {
			rec, err := s.format.Marshal(e)
			if err != nil {
				return "", err
			}
			s.buf.Write(rec)
			s.buf.WriteByte('\n')
		}
		return "text/plain; charset=utf-8", nil
	}
	s.buf.WriteByte('[')
	for i, e := range events {
		rec, err := s.format.Marshal(e)
		if err != nil {
			return "", err
		}
		if i > 0 {
			s.buf.WriteByte(',')
		}
		s.buf.Write(rec)
	}
	s.buf.WriteByte(']')
	return "application/json", nil
}

// bulkResult reads an Elasticsearch _bulk response: created and already-existing (409) documents are delivered;
// 429 and 5xx items make the whole batch retried (the created ones then answer 409); other item errors refuse it.
func bulkResult(body []byte) error {
	var r struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("decode bulk response: %w", err)
	}
	if !r.Errors {
		return nil
	}
	var retry, refused []string
	for _, item := range r.Items {
		for _, it := range item {
			switch {
			case it.Status/100 == 2 || it.Status == http.StatusConflict:
			case it.Status == http.StatusTooManyRequests || it.Status >= 500:
				retry = append(retry, string(it.Error))
			default:
				refused = append(refused, string(it.Error))
			}
		}
	}
	switch {
	case len(retry) > 0:
		return fmt.Errorf("bulk: %d documents to retry: %s", len(retry), truncate(retry[0], 512))
	case len(refused) > 0:
		return &PermanentError{Err: fmt.Errorf("bulk: %d documents refused: %s", len(refused), truncate(refused[0], 512))}
	}
	return nil
}

// Close releases idle connections.
func (s *HTTPSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

func cmpOrRT(a, b http.RoundTripper) http.RoundTripper {
	if a != nil {
		return a
	}
	return b
}
