package cli

import (
	"testing"

	"github.com/rootscan/rootscan/report"
)

func TestSBOMFileBase(t *testing.T) {
	tests := []struct {
		t    report.Target
		want string
	}{
		{report.Target{Kind: "container", ContainerID: "0123456789abcdef0123", Namespace: "shop", Pod: "web-0", Container: "app"}, "shop_web-0_app_0123456789ab"},
		{report.Target{Kind: "container", ContainerID: "abc", Pod: "p/../x", Container: "c d"}, "p-..-x_c-d_abc"},
		{report.Target{Kind: "oci", Path: "/srv/images/layout"}, "oci_layout"},
		{report.Target{Kind: "dir", Path: "/"}, "dir_-"},
		{report.Target{Kind: "dir", Path: "/srv/.hidden"}, "dir_.hidden"},
		{report.Target{}, "target"},
	}
	for _, tt := range tests {
		if got := sbomFileBase(tt.t); got != tt.want {
			t.Errorf("sbomFileBase(%+v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestEcosystemCounts(t *testing.T) {
	pkgs := []report.Package{{Ecosystem: "Debian"}, {Ecosystem: "Go"}, {Ecosystem: "Go"}, {Ecosystem: "npm"},
		{Ecosystem: "npm", Evidence: report.EvidenceLockFile}}
	if got, want := ecosystemCounts(pkgs), "2 Go, 2 npm (1 declared), 1 Debian"; got != want {
		t.Errorf("ecosystemCounts = %q, want %q", got, want)
	}
	if got := ecosystemCounts(nil); got != "0" {
		t.Errorf("no packages: %q", got)
	}
}
