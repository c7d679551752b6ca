package exporter

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rootscan/rootscan/report"
)

// Metrics is the node's current findings as Prometheus series, one set per container, fed from scan reports.
//
// It is a custom prometheus.Collector over a map of immutable per-container series rather than a set of GaugeVecs:
// Update swaps one container's whole series set under a lock, so a scrape never sees half of a container's new
// counts next to half of its old ones, and Delete drops every series of a container in one step, with no label
// bookkeeping that could leave a stale series behind. The series are built once in Update (see series), so a scrape
// costs no counting.
//
// Cardinality is bounded by construction: every counting label (severity, fixable, reachable, in_use, status, change,
// executable) has
// a fixed set of values, ecosystems are capped per container, and there is never a label per CVE, control or file.
// What grows with the node is the number of containers: MetricsOptions drops identity labels and caps the series.
type Metrics struct {
	node   string
	d      metricDescs
	shared sharedLabels
	fleet  fleetLimits

	mu   sync.RWMutex
	byID map[string]*containerSeries
}

// Bounds on what one container contributes, whatever its report holds.
const (
	// maxEcosystems is how many distinct ecosystems get their own packages series; the rest are counted as "other".
	maxEcosystems = 16
	// maxLabelLen caps label values taken from reports (image references, os-release fields of a hostile image).
	maxLabelLen = 256
	// ecosystemOther is where ecosystems beyond maxEcosystems are counted.
	ecosystemOther = "other"
)

// Metric names of the per-container series, exported so that the deploy/ alert rules and dashboard can be checked
// against what the exporter really exposes.
const (
	MetricVulnerabilities           = "rootscan_container_vulnerabilities"
	MetricVulnerabilitiesSuppressed = "rootscan_container_vulnerabilities_suppressed"
	MetricComplianceControls        = "rootscan_container_compliance_controls"
	MetricDriftPaths                = "rootscan_container_drift_paths"
	MetricPackages                  = "rootscan_container_packages"
	MetricLastScanTimestamp         = "rootscan_container_last_scan_timestamp_seconds"
	MetricLastScanSuccess           = "rootscan_container_last_scan_success"
	MetricImageInfo                 = "rootscan_container_image_info"
)

type metricDescs struct {
	vulns, suppressed, compliance, drift, packages, lastScan, success, info *prometheus.Desc
}

// severityLabels are the label values of the severity label, indexed by severityIndex. Lower case, as Prometheus
// label values usually are; report.Severity's upper-case words stay in JSON and SIEM events.
func severityLabels() [6]string {
	return [6]string{"critical", "high", "medium", "low", "none", "unknown"}
}

// severityIndex maps a severity onto severityLabels; anything unrecognised counts as unknown, so a new or damaged
// value can neither be lost nor add a label value.
func severityIndex(s report.Severity) int {
	switch s {
	case report.SeverityCritical:
		return 0
	case report.SeverityHigh:
		return 1
	case report.SeverityMedium:
		return 2
	case report.SeverityLow:
		return 3
	case report.SeverityNone:
		return 4
	}
	return 5
}

// impactIndex maps an InSpec impact onto severityLabels the way scan/model.go documents it, for control results
// that carry an impact but no severity.
func impactIndex(impact float64) int {
	switch {
	case impact >= 0.9:
		return 0
	case impact >= 0.7:
		return 1
	case impact >= 0.4:
		return 2
	case impact > 0:
		return 3
	case impact == 0:
		return 4
	}
	return 5
}

// controlStatuses are the status label values; an unrecognised status counts as error, the status that asks for a
// human to look.
func controlStatuses() [4]string {
	return [4]string{report.ControlPassed, report.ControlFailed, report.ControlSkipped, report.ControlError}
}

func statusIndex(s string) int {
	switch s {
	case report.ControlPassed:
		return 0
	case report.ControlFailed:
		return 1
	case report.ControlSkipped:
		return 2
	}
	return 3
}

// driftChanges are the change label values; an unrecognised change counts as changed.
func driftChanges() [3]string {
	return [3]string{report.DriftAdded, report.DriftChanged, report.DriftDeleted}
}

func changeIndex(c string) int {
	switch c {
	case report.DriftAdded:
		return 0
	case report.DriftDeleted:
		return 2
	}
	return 1
}

// NewFleetMetrics returns an empty Metrics for one node, with the identity labels and the series cap of opts (the
// zero options: every label, no cap); it fails on a label that is not one of IdentityLabels. node becomes the node
// label of every series, so the series of many nodes stay apart however Prometheus scrapes them.
func NewFleetMetrics(node string, opts MetricsOptions) (*Metrics, error) {
	fleet, err := newFleetLimits(node, opts)
	if err != nil {
		return nil, err
	}
	base := fleet.baseNames()
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	return &Metrics{
		node:   cleanLabel(node),
		byID:   make(map[string]*containerSeries),
		shared: newSharedLabels(),
		fleet:  fleet,
		d: metricDescs{
			vulns: prometheus.NewDesc(MetricVulnerabilities,
				"Open (not VEX-suppressed) vulnerabilities in the container, by severity, whether a fixed version exists, "+
					"whether the vulnerable code is in the program (Go: true or false; unknown otherwise) and whether the "+
					"package was seen in use at run time (with eBPF: true or false; unknown otherwise).",
				with("severity", "fixable", "reachable", "in_use"), nil),
			suppressed: prometheus.NewDesc(MetricVulnerabilitiesSuppressed,
				"Vulnerabilities in the container that a VEX statement suppressed, by severity.",
				with("severity"), nil),
			compliance: prometheus.NewDesc(MetricComplianceControls,
				"Compliance control results in the container, by status and severity (from the control's impact).",
				with("status", "severity"), nil),
			drift: prometheus.NewDesc(MetricDriftPaths,
				"Paths the container added, changed or deleted on top of its image, by change and whether executable.",
				with("change", "executable"), nil),
			packages: prometheus.NewDesc(MetricPackages,
				"Installed packages in the container, by ecosystem.",
				with("ecosystem"), nil),
			lastScan: prometheus.NewDesc(MetricLastScanTimestamp,
				"Unix time the container's last scan finished, successful or not.",
				base, nil),
			success: prometheus.NewDesc(MetricLastScanSuccess,
				"Whether the container's last scan succeeded (1) or failed (0); on failure the findings series keep the last successful scan's values.",
				base, nil),
			info: prometheus.NewDesc(MetricImageInfo,
				"Facts about the container's image (always 1): digest, OS and distroless flavour.",
				with(fleet.infoNames("image_digest", "os", "os_version", "distroless", "distroless_flavour")...), nil),
		},
	}, nil
}

// Register adds m to reg; the daemon calls it once with the registry its /metrics handler serves.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	return reg.Register(m)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.d.vulns, m.d.suppressed, m.d.compliance, m.d.drift, m.d.packages,
		m.d.lastScan, m.d.success, m.d.info} {
		ch <- d
	}
	if m.fleet.maxSeries > 0 {
		ch <- m.fleet.cappedDesc
	}
}

// Collect implements prometheus.Collector. Two containers with the same labels (a restarted container whose exited
// predecessor the runtime still keeps) would be duplicate series, which fails the whole scrape; only the preferred
// one of them (see containerSeries.preferredTo) is exposed.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	winners := make(map[string]*containerSeries, len(m.byID))
	for _, s := range m.byID {
		if w, ok := winners[s.key]; !ok || s.preferredTo(w) {
			winners[s.key] = s
		}
	}
	m.mu.RUnlock()
	m.collectFleet(winners, ch)
}

// Update replaces the series of the report's container with what the report says, atomically: a scrape sees either
// all of the old series or all of the new. A failed report (Error set or no Result) updates the last scan time and
// success only; the findings series keep the values of the last successful scan, so a transient mount failure does
// not resolve and re-fire every alert on that container.
func (m *Metrics) Update(rep report.Report) {
	id := containerKey(rep.Target)
	t := rep.Target
	labels := []string{cleanLabel(t.Namespace), cleanLabel(t.Pod), cleanLabel(t.Container), cleanLabel(t.Image)}
	base, group := m.fleet.base(m.node, labels)
	s := &containerSeries{
		id:        id,
		key:       strings.Join(labels, "\x00"),
		group:     group,
		namespace: labels[0],
		running:   t.State == "running",
		at:        rep.StartedAt.Add(rep.Duration).UnixNano(),
	}
	ok := rep.Error == "" && rep.Result != nil
	done := float64(s.at) / 1e9
	s.status = []prometheus.Metric{
		m.shared.newSeries(m.d.lastScan, done, base),
		m.shared.newSeries(m.d.success, boolValue(ok), base),
	}
	if rep.Result != nil {
		s.findings = m.findings(base, t, rep.Result)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if rep.Result == nil {
		if prev, found := m.byID[id]; found && prev.key == s.key {
			s.findings = prev.findings
		}
	}
	m.byID[id] = s
}

// Delete drops every series of a container, for a container the runtime no longer has.
func (m *Metrics) Delete(containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, containerID)
}

// Retain drops the series of every container for which keep returns false and says how many went: after a full
// CRI resync the daemon keeps what the runtime still lists, without tracking the IDs itself.
func (m *Metrics) Retain(keep func(containerID string) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id := range m.byID {
		if !keep(id) {
			delete(m.byID, id)
			n++
		}
	}
	return n
}

// Len is how many containers have series, for the scanner's containers_known health gauge and for tests.
func (m *Metrics) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}

// findings builds the counting series of one result.
func (m *Metrics) findings(base []*dto.LabelPair, t report.Target, r *report.Result) []prometheus.Metric {
	var (
		vulns      [6][2][3][3]int
		suppressed [6]int
		controls   [4][6]int
		drift      [3][2]int
	)
	for i := range r.Vulnerabilities {
		v := &r.Vulnerabilities[i]
		if v.Suppressed != nil {
			suppressed[severityIndex(v.Severity)]++
			continue
		}
		vulns[severityIndex(v.Severity)][boolIndex(v.Fixable())][reachableIndex(v.Reachable)][inUseIndex(v.InUse)]++
	}
	for i := range r.Compliance {
		c := &r.Compliance[i]
		sev := severityIndex(c.Severity)
		if c.Severity == "" {
			sev = impactIndex(c.Impact)
		}
		controls[statusIndex(c.Status)][sev]++
	}
	for i := range r.Drift {
		d := &r.Drift[i]
		drift[changeIndex(d.Change)][boolIndex(d.Executable)]++
	}
	ecosystems := countEcosystems(r.Packages)

	sevs, statuses, changes := severityLabels(), controlStatuses(), driftChanges()
	out := make([]prometheus.Metric, 0, 12+len(ecosystems)+8)
	sh := m.shared
	gauge := func(d *prometheus.Desc, n int, extra ...*dto.LabelPair) {
		out = append(out, sh.newSeries(d, float64(n), base, extra...))
	}
	// Open vulnerabilities with reachable="unknown" and in_use="unknown" (every finding without those verdicts) are
	// always exposed, zeros included: "no critical vulnerabilities" is an answer dashboards and alerts need, and a
	// series that appears only on the first finding is hard to query. Everything else, reachable and in_use
	// "true"/"false" included, appears only when non-zero, to keep a node's series count proportional to its
	// findings. in_use takes the same three values as reachable.
	reach := reachableLabels()
	for s := range sevs {
		for f, fixable := range []string{"false", "true"} {
			for r := range reach {
				for u := range reach {
					if n := vulns[s][f][r][u]; n > 0 || (r == reachUnknown && u == reachUnknown) {
						gauge(m.d.vulns, n, sh.pair("severity", sevs[s]), sh.pair("fixable", fixable), sh.pair("reachable", reach[r]),
							sh.pair("in_use", reach[u]))
					}
				}
			}
		}
	}
	for s, n := range suppressed {
		if n > 0 {
			gauge(m.d.suppressed, n, sh.pair("severity", sevs[s]))
		}
	}
	for st := range statuses {
		for s := range sevs {
			if n := controls[st][s]; n > 0 {
				gauge(m.d.compliance, n, sh.pair("status", statuses[st]), sh.pair("severity", sevs[s]))
			}
		}
	}
	for c := range changes {
		for e, exec := range []string{"false", "true"} {
			if n := drift[c][e]; n > 0 {
				gauge(m.d.drift, n, sh.pair("change", changes[c]), sh.pair("executable", exec))
			}
		}
	}
	for _, e := range ecosystems {
		gauge(m.d.packages, e.n, labelPair("ecosystem", e.name))
	}

	var osID, osVersion, distroless, flavour string
	if r.OS != nil {
		osID, osVersion = r.OS.ID, r.OS.VersionID
	}
	if r.Distroless != nil {
		distroless, flavour = strconv.FormatBool(r.Distroless.Distroless), r.Distroless.Flavour
	}
	info := []*dto.LabelPair{labelPair("image_digest", cleanLabel(t.ImageDigest)), labelPair("os", cleanLabel(osID)),
		labelPair("os_version", cleanLabel(osVersion)), sh.pair("distroless", distroless),
		labelPair("distroless_flavour", cleanLabel(flavour))}
	if m.fleet.keepContainerID {
		info = append(info, labelPair("container_id", cleanLabel(t.ContainerID)))
	}
	gauge(m.d.info, 1, info...)
	return out
}

type ecosystemCount struct {
	name string
	n    int
}

// countEcosystems counts packages per ecosystem, the first maxEcosystems distinct ecosystems (in name order) by
// name and the rest as ecosystemOther.
func countEcosystems(pkgs []report.Package) []ecosystemCount {
	counts := make(map[string]int)
	for i := range pkgs {
		// Cleaned before counting: two names that clean to the same label value must be one series.
		counts[cleanLabel(pkgs[i].Ecosystem)]++
	}
	out := make([]ecosystemCount, 0, len(counts))
	for name, n := range counts {
		out = append(out, ecosystemCount{name: name, n: n})
	}
	sortEcosystems(out)
	if len(out) <= maxEcosystems {
		return out
	}
	other := ecosystemCount{name: ecosystemOther}
	for _, e := range out[maxEcosystems-1:] {
		other.n += e.n
	}
	return append(out[:maxEcosystems-1], other)
}

func sortEcosystems(es []ecosystemCount) {
	slices.SortFunc(es, func(a, b ecosystemCount) int { return cmp.Compare(a.name, b.name) })
}

// containerSeries is one container's series, immutable once built so Collect can send them without a lock.
type containerSeries struct {
	id  string
	key string // the label values that identify the container's series, to find two containers with the same labels
	// group is the values of the identity labels kept (see fleetLimits): containers with the same group are summed.
	group     string
	namespace string
	// running and at (the scan's end, Unix ns) choose between containers with the same key.
	running  bool
	at       int64
	status   []prometheus.Metric
	findings []prometheus.Metric
}

// preferredTo says whether s, rather than o with the same labels, is the one to expose: a running container over
// one that is not, then the more recent scan, then the larger ID so the choice is stable between scrapes.
func (s *containerSeries) preferredTo(o *containerSeries) bool {
	if s.running != o.running {
		return s.running
	}
	if s.at != o.at {
		return s.at > o.at
	}
	return s.id > o.id
}

// containerKey is the ID a report's series are stored under: the container ID, or for a dir or OCI target
// (no container) the target's name.
func containerKey(t report.Target) string {
	if t.ContainerID != "" {
		return t.ContainerID
	}
	return t.Kind + ":" + t.Name()
}

// cleanLabel makes a report's string safe as a label value: valid UTF-8 (client_golang rejects anything else, and
// os-release comes from the image) and at most maxLabelLen bytes.
func cleanLabel(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= maxLabelLen {
		return s
	}
	cut := maxLabelLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// reachableLabels are the values of the reachable label; reachUnknown indexes "unknown".
func reachableLabels() [3]string { return [3]string{"false", "true", "unknown"} }

const reachUnknown = 2

// reachableIndex maps a finding's reachability onto reachableLabels: not decided (every ecosystem but Go) is
// unknown.
func reachableIndex(r report.Reachability) int {
	switch r {
	case report.ReachableFalse:
		return 0
	case report.ReachableTrue:
		return 1
	}
	return reachUnknown
}

// inUseIndex maps a finding's runtime verdict onto reachableLabels (the same three values): not marked is unknown.
func inUseIndex(u report.InUse) int {
	switch u {
	case report.InUseFalse:
		return 0
	case report.InUseTrue:
		return 1
	}
	return reachUnknown
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
