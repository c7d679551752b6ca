package node

import (
	"errors"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/rootscan/rootscan/fsaccess"
)

func TestUpperDir(t *testing.T) {
	overlay := func(opts ...string) []mount.Mount {
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	}
	for _, tc := range []struct {
		name   string
		mounts []mount.Mount
		want   string // "" = ErrUnsupportedMount
	}{
		{"active overlay", overlay("index=off", "workdir=/s/2/work", "upperdir=/s/2/fs", "lowerdir=/s/1/fs"), "/s/2/fs"},
		{"userxattr", overlay("userxattr", "upperdir=/s/9/fs", "lowerdir=/s/8/fs:/s/7/fs"), "/s/9/fs"},
		{"committed view", overlay("lowerdir=/s/2/fs:/s/1/fs"), ""},
		{"relative upper", overlay("upperdir=fs", "lowerdir=/s/1/fs"), ""},
		{"empty upper", overlay("upperdir=", "lowerdir=/s/1/fs"), ""},
		{"bind", []mount.Mount{{Type: "bind", Source: "/s/1/fs", Options: []string{"rbind", "rw"}}}, ""},
		{"two mounts", append(overlay("upperdir=/a"), overlay("upperdir=/b")...), ""},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := upperDir(tc.mounts)
			if tc.want == "" {
				if !errors.Is(err, fsaccess.ErrUnsupportedMount) {
					t.Fatalf("upperDir = %q, %v; want ErrUnsupportedMount", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("upperDir = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
