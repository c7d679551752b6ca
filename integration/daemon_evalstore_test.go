package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootscan/rootscan/exporter"
	"github.com/rootscan/rootscan/internal/testbed"
	"github.com/rootscan/rootscan/internal/testbed/ociimage"
)

// The daemon keeps its compliance image evaluations in its state dir: started again on the same node, it evaluates
// no image again (every container's image evaluation comes from disk, and no control is evaluated) and reports the
// same compliance results. Stored evaluations that are damaged are ignored with a log line and made again, with the
// same results.
func TestDaemonImageEvalsSurviveRestart(t *testing.T) {
	bed, ctx, _, ref := startBed(t, ociimage.Distroless)
	state := filepath.Join(t.TempDir(), "state")
	mounts := filepath.Join(t.TempDir(), "mounts")
	args := []string{"--runtime-endpoint", bed.Address(), "--state-dir", state, "--mount-dir", mounts,
		"--node-name", "node-1", "--resync", "1h", "--db", filepath.Join(t.TempDir(), "db")}
	containers := map[string][]string{"web": {"a", "b"}, "api": {"c"}}
	for pod, names := range containers {
		p, err := bed.RunPod(ctx, testbed.PodSpec{Name: pod, Namespace: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if _, err := bed.RunContainer(ctx, p, testbed.ContainerSpec{Name: n, Image: ref.Name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// run starts the daemon, waits for every container's compliance results and stops it; it returns the results
	// (every compliance series of the three containers), the image evaluations by source and the log.
	run := func(what string) (series []string, sources map[string]float64, log string) {
		t.Helper()
		d := startDaemonProc(t, args...)
		waitUntil(t, what+": every container's compliance results", 60*time.Second, func() bool {
			_, body := d.get("/metrics")
			series = complianceSeries(body)
			for pod, names := range containers {
				for _, n := range names {
					if !slices.ContainsFunc(series, func(s string) bool {
						return strings.Contains(s, `pod="`+pod+`"`) && strings.Contains(s, `container="`+n+`"`)
					}) {
						return false
					}
				}
			}
			return true
		})
		_, body := d.get("/metrics")
		series = complianceSeries(body)
		sources = map[string]float64{}
		for _, s := range exporter.ImageEvalSources {
			sources[s], _ = metric(body, exporter.MetricImageEvalsTotal, "source="+s)
		}
		d.stopClean(t, mounts)
		return series, sources, d.stderr.String()
	}

	first, src1, _ := run("first start")
	if src1["evaluated"] != 1 || src1["disk"] != 0 {
		t.Errorf("first start: image evaluations %v, want 1 evaluated (one image), none from disk", src1)
	}
	stored, _ := filepath.Glob(filepath.Join(state, "checks", "evals", "*.json"))
	if len(stored) != 1 {
		t.Fatalf("stored evaluations %v, want one (one image, one check)", stored)
	}
	fi, err := os.Stat(stored[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stored image evaluation: %d bytes for the image (%s)", fi.Size(), ref.Name)

	second, src2, log2 := run("restart")
	if src2["evaluated"] != 0 || src2["disk"] != 1 {
		t.Errorf("after a restart: image evaluations %v, want none evaluated, the image's from disk", src2)
	}
	evaluatedAgain := regexp.MustCompile(`msg="image checks applied".* evaluated=[1-9]`)
	if m := evaluatedAgain.FindString(log2); m != "" {
		t.Errorf("after a restart a container evaluated controls again: %s", m)
	}
	if !strings.Contains(log2, `msg="image checks applied"`) {
		t.Error("after a restart: no container applied the image checks")
	}
	if !slices.Equal(first, second) {
		t.Errorf("compliance results after a restart differ:\nbefore %v\nafter  %v", first, second)
	}

	// A damaged file (a torn write by another tool, a full disk) is ignored and the image evaluated again.
	b, err := os.ReadFile(stored[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stored[0], b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	third, src3, log3 := run("restart with a damaged store")
	if src3["evaluated"] != 1 || src3["disk"] != 0 {
		t.Errorf("damaged store: image evaluations %v, want the image evaluated again", src3)
	}
	if !strings.Contains(log3, "stored image evaluation ignored") {
		t.Error("damaged store: not logged")
	}
	if !slices.Equal(first, third) {
		t.Errorf("compliance results after a damaged store differ:\nbefore %v\nafter  %v", first, third)
	}
}

// complianceSeries are the compliance series of /metrics, sorted.
func complianceSeries(body string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, exporter.MetricComplianceControls+"{") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}
