package fsaccess

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
)

func TestReadOnlyMounts(t *testing.T) {
	active := []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "workdir=/s/3/work", "upperdir=/s/3/fs", "lowerdir=/s/2/fs:/s/1/fs", "volatile", "userxattr", "rw",
	}}}
	hard := []string{"ro", "nosuid", "nodev", "noexec"}
	tests := []struct {
		name    string
		in      []mount.Mount
		view    View
		want    []mount.Mount
		wantErr bool
	}{
		{
			name: "container view puts upper dir on top of the lower dirs, drops workdir/index/volatile",
			in:   active, view: ViewContainer,
			want: []mount.Mount{{Type: "overlay", Source: "rootscan", Options: append([]string{"lowerdir=/s/3/fs:/s/2/fs:/s/1/fs", "userxattr"}, hard...)}},
		},
		{
			name: "image view is the lower dirs alone",
			in:   active, view: ViewImage,
			want: []mount.Mount{{Type: "overlay", Source: "rootscan", Options: append([]string{"lowerdir=/s/2/fs:/s/1/fs", "userxattr"}, hard...)}},
		},
		{
			name: "upper view is a read-only bind of the upper dir",
			in:   active, view: ViewUpper,
			want: []mount.Mount{{Type: "bind", Source: "/s/3/fs", Options: append([]string{"bind"}, hard...)}},
		},
		{
			name: "one-layer image: image view is a bind, overlay needs two lower dirs without an upper",
			in:   []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"workdir=/w", "upperdir=/u", "lowerdir=/l"}}},
			view: ViewImage,
			want: []mount.Mount{{Type: "bind", Source: "/l", Options: append([]string{"bind"}, hard...)}},
		},
		{
			name: "native snapshotter bind mount, rw becomes ro",
			in:   []mount.Mount{{Type: "bind", Source: "/n/5", Options: []string{"rbind", "rw"}}},
			view: ViewContainer,
			want: []mount.Mount{{Type: "bind", Source: "/n/5", Options: append([]string{"bind"}, hard...)}},
		},
		{name: "native has no separable image", in: []mount.Mount{{Type: "bind", Source: "/n/5"}}, view: ViewImage, wantErr: true},
		{name: "devmapper block device", in: []mount.Mount{{Type: "ext4", Source: "/dev/mapper/x"}}, view: ViewContainer, wantErr: true},
		{name: "fuse snapshotter", in: []mount.Mount{{Type: "fuse.stargz", Source: "x"}}, view: ViewContainer, wantErr: true},
		{name: "no mounts", in: nil, view: ViewContainer, wantErr: true},
		{name: "option injection through a dir name", in: []mount.Mount{{Type: "bind", Source: "/a,upperdir=/b"}}, view: ViewContainer, wantErr: true},
		{name: "committed view without upper has no upper view", in: []mount.Mount{{Type: "overlay", Options: []string{"lowerdir=/a:/b"}}}, view: ViewUpper, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readOnlyMounts(tc.in, tc.view)
			if tc.wantErr {
				if !errors.Is(err, ErrUnsupportedMount) {
					t.Fatalf("err = %v, want ErrUnsupportedMount", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			for _, o := range got[0].Options {
				if strings.HasPrefix(o, "upperdir=") || strings.HasPrefix(o, "workdir=") || o == "rw" || o == "volatile" {
					t.Fatalf("writable option %q survived", o)
				}
			}
		})
	}
}
