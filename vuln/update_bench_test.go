package vuln

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkUpdate100kTLS is what the daemon's updater costs on a node: the 100,000-advisory corpus fetched over TLS
// from a static server (http.ServeFile: Last-Modified, 304 on If-Modified-Since), built and swapped in, then one
// conditional update answered 304. Peak RSS is the process's high-water mark (the server streams from disk, so it is
// the client's download, import and build). Run with:
// go test ./vuln -run '^$' -bench Update100k -benchtime 1x
func BenchmarkUpdate100kTLS(b *testing.B) {
	tmp := b.TempDir()
	zipPath := filepath.Join(tmp, "all.zip")
	synthZip(b, zipPath)
	zfi, _ := os.Stat(zipPath)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, zipPath) }))
	defer srv.Close()
	opts := UpdateOptions{URLs: []string{srv.URL + "/all.zip"}, Client: srv.Client()}
	runtime.GC()
	rss0 := procStatusKiB("VmHWM:")
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(tmp, "db", string(rune('a'+i%26)), "x")
		os.RemoveAll(dir)
		res, err := Update(context.Background(), dir, opts)
		if err != nil || !res.Changed || res.Info.Advisories != synthAdvisories {
			b.Fatalf("update: %+v %v", res.Info, err)
		}
		if res, err := Update(context.Background(), dir, opts); err != nil || res.Changed {
			b.Fatalf("conditional update: changed=%v %v", res.Changed, err)
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(zfi.Size())/(1<<20), "MiB-zip")
	b.ReportMetric(float64(procStatusKiB("VmHWM:"))/1024, "MiB-peak-rss")
	b.ReportMetric(float64(procStatusKiB("VmHWM:")-rss0)/1024, "MiB-peak-rss-growth")
}
