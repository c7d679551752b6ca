package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestVulnDBMetrics(t *testing.T) {
	loaded := false
	m := NewVulnDBMetrics("node-1", func() (int, bool) { return 1234, loaded })
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	names := []string{MetricVulnDBUpdateFailures, MetricVulnDBLastUpdate, MetricVulnDBAdvisories}
	// Before any update, with no database: no failures, no success, no advisory series.
	want := `
# HELP rootscan_vuln_db_last_update_timestamp_seconds Unix time of the last successful vulnerability database update or not-modified check; 0 before the first.
# TYPE rootscan_vuln_db_last_update_timestamp_seconds gauge
rootscan_vuln_db_last_update_timestamp_seconds{node="node-1"} 0
# HELP rootscan_vuln_db_update_failures_total Vulnerability database updates that failed (network, HTTP status, checksum, damaged or empty archive); the database in use stayed.
# TYPE rootscan_vuln_db_update_failures_total counter
rootscan_vuln_db_update_failures_total{node="node-1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	m.ObserveUpdate(false, time.Unix(1700000000, 0))
	m.ObserveUpdate(true, time.Unix(1700000100, 500_000_000))
	m.ObserveUpdate(false, time.Unix(1700000200, 0))
	loaded = true
	want = `
# HELP rootscan_vuln_db_advisories Advisories in the loaded vulnerability database; absent when none is loaded.
# TYPE rootscan_vuln_db_advisories gauge
rootscan_vuln_db_advisories{node="node-1"} 1234
# HELP rootscan_vuln_db_last_update_timestamp_seconds Unix time of the last successful vulnerability database update or not-modified check; 0 before the first.
# TYPE rootscan_vuln_db_last_update_timestamp_seconds gauge
rootscan_vuln_db_last_update_timestamp_seconds{node="node-1"} 1.7000001005e+09
# HELP rootscan_vuln_db_update_failures_total Vulnerability database updates that failed (network, HTTP status, checksum, damaged or empty archive); the database in use stayed.
# TYPE rootscan_vuln_db_update_failures_total counter
rootscan_vuln_db_update_failures_total{node="node-1"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}
