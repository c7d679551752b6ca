package cgroupid

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "/kubepods/burstable/pod1234/abcd", want: "/kubepods/burstable/pod1234/abcd"},
		{in: "/kubepods/besteffort/pod1234/../../x", wantErr: "leaves the hierarchy"},
		{in: "kubepods/x", wantErr: "not absolute"},
		{in: "kubepods-burstable-pod1234.slice:cri-containerd:abcd",
			want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-abcd.scope"},
		{in: "kubepods-pod1_2.slice:cri-containerd:ef", want: "/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-ef.scope"},
		{in: ":docker:ab", want: "/system.slice/docker-ab.scope"},
		{in: "system.slice:cri-containerd:x.scope", want: "/system.slice/x.scope"},
		{in: "a--b.slice:p:x", wantErr: "invalid systemd slice"},
		{in: "a.slice:p:x/../../y", wantErr: "slash"},
		{in: "a.slice:x", wantErr: "want slice:prefix:name"},
		{in: "", wantErr: "empty"},
	}
	for _, tt := range tests {
		got, err := Dir(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Dir(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Dir(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestUnifiedLine(t *testing.T) {
	got, ok := unifiedLine([]byte("4:memory:/x\n0::/kubepods/pod1/c1\n1:cpu:/\n"))
	if !ok || got != "/kubepods/pod1/c1" {
		t.Errorf("got %q %v", got, ok)
	}
	if _, ok := unifiedLine([]byte("4:memory:/x\n")); ok {
		t.Error("v1-only file has no unified line")
	}
}

// TestOfPIDAndDir resolves this process's own cgroup two ways on the running host and checks they agree.
func TestOfPIDAndDir(t *testing.T) {
	mnt, err := Mount()
	if err != nil {
		t.Skipf("host without cgroup v2: %v", err)
	}
	byPID, err := OfPID("/proc", mnt, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := unifiedLine(b)
	byDir, err := OfDir(filepath.Join(mnt, rel))
	if err != nil || byDir != byPID || byPID == 0 {
		t.Errorf("OfPID %d, OfDir %d, %v", byPID, byDir, err)
	}
	if _, err := OfDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not on cgroup2fs") {
		t.Errorf("OfDir on a plain directory: %v", err)
	}
}

// TestMountUnder finds this host's cgroup v2 hierarchy from its mount point, as Mount does from the host's mode, and
// refuses a directory that holds none.
func TestMountUnder(t *testing.T) {
	want, err := Mount()
	if err != nil {
		t.Skip(err)
	}
	if got, err := MountUnder("/sys/fs/cgroup"); err != nil || got != want {
		t.Errorf("MountUnder(/sys/fs/cgroup) = %q, %v; want %q", got, err, want)
	}
	if _, err := MountUnder(t.TempDir()); !errors.Is(err, ErrNoUnified) {
		t.Errorf("MountUnder(empty dir) = %v, want ErrNoUnified", err)
	}
}
