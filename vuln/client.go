package vuln

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// maxCAFile bounds a CA bundle read for FeedClient (a full system bundle is about 200 KiB).
const maxCAFile = 4 << 20

// FeedClient is the HTTP client Update fetches with: the environment's proxy settings, TLS 1.2 or newer, and a 30
// minute bound on one archive. With caFile set it trusts only the PEM certificates in that file, not the system's:
// an in-cluster mirror with a private CA is trusted for exactly what it serves, and a mistyped URL that reaches a
// public host fails instead of quietly fetching something else.
func FeedClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Minute}, nil
}

func loadCAs(name string) (*x509.CertPool, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("read CA file %s: %w", name, err)
	}
	if len(pem) > maxCAFile {
		return nil, fmt.Errorf("CA file %s: larger than %d bytes", name, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", name)
	}
	return pool, nil
}

// CheckFeedURLs refuses what Update would refuse for its URLs alone (a scheme other than https, or http without
// insecure), so a daemon fails at start on a mistyped URL instead of logging the failure every retry.
func CheckFeedURLs(urls []string, insecure bool) error {
	for _, u := range urls {
		if err := checkScheme(u, insecure); err != nil {
			return fmt.Errorf("feed %s: %w", u, err)
		}
	}
	return nil
}
