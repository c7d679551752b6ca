package bpf

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rawEvent builds a record as the C programs lay it out (include/rootscan.h).
type rawEvent struct {
	kind, flags         uint32
	cgroup, ino         uint64
	dev                 uint32
	pid, ppid, uid, gid uint32
	prot                uint32
	comm                string
	path                []byte // leaf-first names, NUL-terminated
	filename            string
	argv                []byte
	pcomm               string
	pathLen, argvLen    int // -1: len of the field
}

func (r rawEvent) bytes() []byte {
	size := mmapEventSize
	switch r.kind {
	case uint32(Exec):
		size = execEventSize
	case uint32(NewCgroup):
		size = headerSize
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b[0:], r.kind)
	le.PutUint32(b[4:], r.flags)
	le.PutUint64(b[8:], r.cgroup)
	le.PutUint64(b[16:], r.ino)
	le.PutUint32(b[24:], r.dev)
	le.PutUint32(b[28:], r.pid)
	le.PutUint32(b[32:], r.ppid)
	le.PutUint32(b[36:], r.uid)
	le.PutUint32(b[40:], r.gid)
	le.PutUint32(b[44:], r.prot)
	le.PutUint16(b[48:], uint16(pick(r.pathLen, len(r.path))))
	copy(b[56:72], r.comm)
	if r.kind == uint32(NewCgroup) {
		return b
	}
	copy(b[headerSize:], r.path)
	if r.kind == uint32(Exec) {
		le.PutUint16(b[50:], uint16(len(r.filename)))
		le.PutUint16(b[52:], uint16(pick(r.argvLen, len(r.argv))))
		copy(b[mmapEventSize:], r.filename)
		copy(b[mmapEventSize+filenameLen:mmapEventSize+filenameLen+argvLen], r.argv)
		copy(b[execEventSize-commLen:], r.pcomm)
	}
	return b
}

func pick(v, def int) int {
	if v < 0 {
		return def
	}
	return v
}

func TestDecode(t *testing.T) {
	longArg := strings.Repeat("a", argvLen+10)
	tests := []struct {
		name    string
		raw     []byte
		want    Event
		wantErr string
	}{
		{
			name: "exec from the upper layer",
			raw: rawEvent{kind: 1, flags: flagOverlay | flagUpper, cgroup: 4242, ino: 77, dev: 0x00000033, pid: 10, ppid: 9,
				uid: 1000, gid: 1001, comm: "dropped", path: []byte("dropped\x00tmp\x00"), filename: "./dropped",
				argv: []byte("./dropped\x00-x\x00"), pcomm: "runc:[2:INIT]", pathLen: -1, argvLen: -1}.bytes(),
			want: Event{Kind: Exec, CgroupID: 4242, PID: 10, PPID: 9, UID: 1000, GID: 1001, Comm: "dropped", Inode: 77,
				Dev: unix.Mkdev(0, 0x33), Overlay: true, Upper: true, Path: "/tmp/dropped", Filename: "./dropped",
				Argv: []string{"./dropped", "-x"}, ParentComm: "runc:[2:INIT]"},
		},
		{
			name: "exec with argv cut by the buffer and a partial path",
			raw: rawEvent{kind: 1, flags: flagOverlay | flagGuessed | flagPathPartial, dev: 8<<20 | 1, path: []byte("x\x00bin\x00"),
				argv: []byte(longArg), pathLen: -1, argvLen: -1}.bytes(),
			want: Event{Kind: Exec, Dev: unix.Mkdev(8, 1), Overlay: true, UpperGuessed: true, PathPartial: true,
				Path: "bin/x", Argv: []string{longArg[:argvLen]}, ArgvTruncated: true},
		},
		{
			name: "mmap, path at the root",
			raw:  rawEvent{kind: 2, cgroup: 1, prot: 5, comm: "python3", pathLen: 0}.bytes(),
			want: Event{Kind: Map, CgroupID: 1, Prot: 5, Comm: "python3", Path: "/"},
		},
		{
			name: "lengths beyond their buffers are clamped",
			raw:  rawEvent{kind: 2, path: []byte(strings.Repeat("p", pathBuf)), pathLen: 0xffff}.bytes(),
			want: Event{Kind: Map, Path: "/" + strings.Repeat("p", pathMax)},
		},
		{
			name: "new cgroup: who, no file",
			raw:  rawEvent{kind: 3, cgroup: 9001, pid: 321, uid: 0, gid: 5, comm: "sh"}.bytes(),
			want: Event{Kind: NewCgroup, CgroupID: 9001, PID: 321, GID: 5, Comm: "sh"},
		},
		{
			name: "new cgroup ignores file fields and trailing bytes",
			raw: append(rawEvent{kind: 3, flags: flagUpper, cgroup: 7, ino: 99, ppid: 4, pathLen: 300,
				comm: strings.Repeat("c", commLen)}.bytes(), 1, 2, 3),
			want: Event{Kind: NewCgroup, CgroupID: 7, Comm: strings.Repeat("c", commLen)},
		},
		{name: "new cgroup cut short", raw: rawEvent{kind: 3}.bytes()[:headerSize-1], wantErr: "short event"},
		{name: "empty", raw: nil, wantErr: "short event"},
		{name: "unknown kind", raw: rawEvent{kind: 4}.bytes(), wantErr: "unknown kind 4"},
		{name: "exec cut short", raw: rawEvent{kind: 1}.bytes()[:mmapEventSize], wantErr: "short event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(rawEvent{kind: 1, path: []byte("a\x00b\x00"), argv: []byte("x\x00y"), pathLen: -1, argvLen: -1}.bytes())
	f.Add(rawEvent{kind: 2, path: []byte("lib.so\x00"), pathLen: -1}.bytes())
	f.Add(rawEvent{kind: 3, cgroup: 1, comm: "init"}.bytes())
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			return
		}
		if len(ev.Path) > pathMax+1 || len(ev.Filename) > filenameLen || len(ev.Comm) > commLen {
			t.Fatalf("field longer than its buffer: %+v", ev)
		}
		if n := len(strings.Join(ev.Argv, "\x00")); n > argvLen {
			t.Fatalf("argv %d bytes", n)
		}
		if ev.Kind == NewCgroup {
			if ev.Path != "" || ev.Inode != 0 || ev.Argv != nil {
				t.Fatalf("new-cgroup event with file fields: %+v", ev)
			}
			return
		}
		if !ev.PathPartial && !strings.HasPrefix(ev.Path, "/") {
			t.Fatalf("whole path %q is not absolute", ev.Path)
		}
	})
}

// BenchmarkDecode is the user-space cost of one exec record, the largest kind.
func BenchmarkDecode(b *testing.B) {
	raw := rawEvent{kind: 1, flags: flagOverlay | flagUpper, path: []byte("python3.11\x00bin\x00usr\x00"), filename: "/usr/bin/python3",
		argv: []byte("python3\x00-m\x00http.server\x008080\x00"), pathLen: -1, argvLen: -1}.bytes()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
