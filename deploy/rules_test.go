package deploy

import (
	"bytes"
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const (
	alertsFile     = "prometheus/alerts.yaml"
	alertsTestFile = "prometheus/alerts_test.yaml"
	// helmAlertsFile is the chart's copy (Helm cannot read files outside the chart), kept identical.
	helmAlertsFile = "helm/rootscan/files/alerts.yaml"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatalf("parse %s: %v", alertsFile, err)
	}
	return rf
}

// TestAlertRulesUseExposedMetrics: every metric, label and label value the rules use is one the exporter serves,
// so a renamed metric or a misspelt label fails here instead of leaving an alert that can never fire.
func TestAlertRulesUseExposedMetrics(t *testing.T) {
	ex := exposedMetrics(t)
	rf := readRules(t)
	wantAlerts := []string{"RootscanCriticalVulnerabilityFixable", "RootscanComplianceFailureHighImpact",
		"RootscanExecutableDrift", "RootscanScansFailing", "RootscanContainerScanFailing", "RootscanScannerStuck",
		"RootscanContainerScanStale", "RootscanVulnDBTooOld", "RootscanVulnDBNotLoaded", "RootscanVulnDBUpdateFailing", "RootscanEventsDropped",
		"RootscanMetricsSeriesCapped", "RootscanExecDrift", "RootscanEBPFEventsLost",
		"RootscanCriticalVulnerabilityFixableInUse", "RootscanContainerQuarantined", "RootscanScanIncomplete",
		"RootscanEBPFUnavailable"}
	have := make(map[string]bool)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			have[r.Alert] = true
			if err := checkExpr(ex, r.Expr, nil); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" && sev != "info" {
				t.Errorf("alert %s: severity label %q, want critical, warning or info", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a summary and a description", r.Alert)
			}
		}
	}
	for _, a := range wantAlerts {
		if !have[a] {
			t.Errorf("alert %s missing", a)
		}
	}
	if len(have) != len(wantAlerts) {
		t.Errorf("%d alerts, want the %d listed here (add new ones to the list and to %s)", len(have), len(wantAlerts), alertsTestFile)
	}
}

// TestAlertTestsUseExposedMetrics: the promtool tests must feed the rules series shaped like rootscan's, or they
// prove nothing about real data.
func TestAlertTestsUseExposedMetrics(t *testing.T) {
	ex := exposedMetrics(t)
	data, err := os.ReadFile(alertsTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			InputSeries []struct {
				Series string `json:"series"`
			} `json:"input_series"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &tf); err != nil {
		t.Fatalf("parse %s: %v", alertsTestFile, err)
	}
	n := 0
	for _, tc := range tf.Tests {
		for _, s := range tc.InputSeries {
			n++
			lset, err := parser.NewParser(parser.Options{}).ParseMetric(s.Series)
			if err != nil {
				t.Errorf("input series %s: %v", s.Series, err)
				continue
			}
			name := lset.Get(labels.MetricName)
			exposedLabels, ok := ex[name]
			if !ok {
				t.Errorf("input series %s: metric not exposed by rootscan", s.Series)
				continue
			}
			lset.Range(func(l labels.Label) {
				if l.Name == labels.MetricName {
					return
				}
				if _, ok := exposedLabels[l.Name]; !ok {
					t.Errorf("input series %s: rootscan exposes no label %q on %s", s.Series, l.Name, name)
				}
			})
			for l := range exposedLabels {
				if !lset.Has(l) && l != "le" {
					t.Errorf("input series %s: lacks label %q that rootscan always sets", s.Series, l)
				}
			}
		}
	}
	if n == 0 {
		t.Fatalf("no input series in %s", alertsTestFile)
	}
}

// TestAlertRulesPromtool runs promtool's own checks and the rule unit tests in alerts_test.yaml.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "ROOTSCAN_PROMTOOL")
	out := run(t, promtool, "check", "rules", alertsFile)
	t.Logf("%s", out)
	out = run(t, promtool, "test", "rules", alertsTestFile)
	if !bytes.Contains(out, []byte("SUCCESS")) {
		t.Errorf("promtool test rules: no SUCCESS in\n%s", out)
	}
}

// TestHelmAlertsCopy: the chart's copy of the rules is the rule file, byte for byte.
func TestHelmAlertsCopy(t *testing.T) {
	a, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(helmAlertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s: cp %[2]s %[1]s", helmAlertsFile, alertsFile)
	}
}
