package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rootscan/rootscan/exporter"
)

// TestSIEMRecipes renders the chart with each SIEM recipe's values from README.md: every sink parses as the daemon
// parses it (with the tokens its extraEnv names set), every token_env= is an env var the pod gets from a Secret, and
// every ca= file lies in a read-only volume mount of the pod.
func TestSIEMRecipes(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(# (?:values-siem-syslog.yaml|Splunk HTTP Event Collector|Elasticsearch)[^\n]*\n.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) != 3 {
		t.Fatalf("README.md has %d SIEM recipe value blocks, want syslog, Splunk and Elasticsearch", len(blocks))
	}
	for _, m := range blocks {
		t.Run(strings.Fields(string(m[1]))[1], func(t *testing.T) {
			values := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(values, m[1], 0o644); err != nil {
				t.Fatal(err)
			}
			objs := renderHelm(t, "-f", values)
			var ds appsv1.DaemonSet
			strict(t, find(t, objs, "DaemonSet"), &ds)
			c := ds.Spec.Template.Spec.Containers[0]
			var cfg struct{ Sinks []string }
			for _, o := range objs {
				if o.Kind == "ConfigMap" && strings.Contains(string(o.Doc), "config.yaml") {
					var cm corev1.ConfigMap
					strict(t, o, &cm)
					if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(cfg.Sinks) < 1 {
				t.Fatalf("no sinks in the rendered config")
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Setenv(e.Name, "token-from-a-secret")
				}
			}
			for _, sink := range cfg.Sinks {
				checkRecipeSink(t, sink, c)
			}
		})
	}
}

// checkRecipeSink parses sink as the daemon does and checks its token_env and ca options against the container.
func checkRecipeSink(t *testing.T, sink string, c corev1.Container) {
	t.Helper()
	// The daemon reads the CA file when it parses the sink: parse with a CA at a path of the test's.
	s, err := exporter.ParseSink(regexp.MustCompile(`ca=[^&]*`).ReplaceAllString(sink, "ca="+testCA(t)))
	if err != nil {
		t.Errorf("sink %q: %v", sink, err)
		return
	}
	if cl, ok := s.(interface{ Close() error }); ok {
		cl.Close()
	}
	_, query, _ := strings.Cut(sink, "?")
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "token_env":
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
				return e.Name == v && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
			}) {
				t.Errorf("sink %q: token_env %s is not an env var from a Secret: %+v", sink, v, c.Env)
			}
		case "ca":
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return strings.HasPrefix(v, m.MountPath+"/") && m.ReadOnly
			}) {
				t.Errorf("sink %q: ca file %s is in no read-only volume mount", sink, v)
			}
		}
	}
}

// testCA writes a self-signed CA certificate and returns its path.
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "siem-ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
