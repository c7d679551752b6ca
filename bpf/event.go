package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Kind says which hook produced an Event.
type Kind uint8

const (
	// Exec is a successful execve by a process in a watched cgroup (tracepoint sched_process_exec).
	Exec Kind = 1
	// Map is the first executable mapping (mmap with PROT_EXEC) of a file by a watched cgroup (syscall tracepoint
	// sys_enter_mmap); a file changed since (new change time) is reported again.
	Map Kind = 2
	// NewCgroup is the first execution in a cgroup that is not watched (a container the caller does not know yet,
	// or a host service), reported once per cgroup id: only CgroupID, PID, UID, GID and Comm are set.
	NewCgroup Kind = 3
)

func (k Kind) String() string {
	switch k {
	case Exec:
		return "exec"
	case Map:
		return "mmap"
	case NewCgroup:
		return "new-cgroup"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one kernel report, decoded. Strings are what the kernel copied, bounded by the programs' buffers
// (path 511 bytes and 32 components, filename 255, argv 1024), so they may be cut and need not be UTF-8.
type Event struct {
	Kind     Kind
	CgroupID uint64 // cgroup v2 id of the process (bpf_get_current_cgroup_id)
	PID      uint32 // thread group id, as in the root pid namespace
	PPID     uint32 // parent's thread group id; Exec only
	UID, GID uint32 // in the initial user namespace
	Comm     string // task comm (after the exec, for Exec)

	// The file executed or mapped: its inode number and device (as in the VFS inode; Dev in st_dev encoding).
	Inode uint64
	Dev   uint64
	// Overlay: the file is on overlayfs. Upper: it lives on the upper layer (not from the image's layers).
	// UpperGuessed: the kernel lacked struct ovl_inode in its BTF and Upper came from an assumed layout; check it
	// against the upper dir before acting on it.
	Overlay, Upper, UpperGuessed bool

	// Path is the file's path inside the process's root ("/usr/bin/x"), built in the kernel from the dentries.
	// When the walk was cut (PathPartial) the leading components are missing and Path does not start with "/".
	Path        string
	PathPartial bool

	// Exec only: the name the caller passed to execve (possibly relative), the arguments (from the new process's
	// memory) and whether the 1024-byte buffer cut them.
	Filename      string
	Argv          []string
	ArgvTruncated bool
	// ParentComm is the parent's task comm at the exec, kept by the kernel because the parent may be gone (and its
	// pid reused) before user space reads /proc.
	ParentComm string
	// Map only: the protection requested.
	Prot uint32
}

// Sizes of the C structs in include/rootscan.h.
const (
	headerSize    = 56 + commLen // also struct cgroup_event, the NewCgroup record
	commLen       = 16
	pathBuf       = 1024
	pathMax       = 511
	filenameLen   = 256
	argvLen       = 1024
	mmapEventSize = headerSize + pathBuf
	execEventSize = mmapEventSize + filenameLen + argvLen + commLen

	flagOverlay     = 1 << 0
	flagUpper       = 1 << 1
	flagGuessed     = 1 << 2
	flagPathPartial = 1 << 4

	kernelMinorBits = 20
)

var errShort = errors.New("short event")

// Decode turns one ring buffer record into an Event. The record comes from our own programs, but it is checked
// like any input: sizes first, lengths clamped to their buffers.
func Decode(raw []byte) (Event, error) {
	if len(raw) < headerSize {
		return Event{}, fmt.Errorf("decoding ebpf event: %w (%d bytes)", errShort, len(raw))
	}
	le := binary.LittleEndian
	kind, flags := le.Uint32(raw[0:]), le.Uint32(raw[4:])
	want := 0
	switch kind {
	case uint32(NewCgroup):
		return Event{Kind: NewCgroup, CgroupID: le.Uint64(raw[8:]), PID: le.Uint32(raw[28:]), UID: le.Uint32(raw[36:]),
			GID: le.Uint32(raw[40:]), Comm: cString(raw[56:headerSize])}, nil
	case uint32(Exec):
		want = execEventSize
	case uint32(Map):
		want = mmapEventSize
	default:
		return Event{}, fmt.Errorf("decoding ebpf event: unknown kind %d", kind)
	}
	if len(raw) < want {
		return Event{}, fmt.Errorf("decoding ebpf %s event: %w (%d bytes)", Kind(kind), errShort, len(raw))
	}
	ev := Event{
		Kind:         Kind(kind),
		CgroupID:     le.Uint64(raw[8:]),
		Inode:        le.Uint64(raw[16:]),
		Dev:          kernelDev(le.Uint32(raw[24:])),
		PID:          le.Uint32(raw[28:]),
		UID:          le.Uint32(raw[36:]),
		GID:          le.Uint32(raw[40:]),
		Overlay:      flags&flagOverlay != 0,
		Upper:        flags&flagUpper != 0,
		UpperGuessed: flags&flagGuessed != 0,
		PathPartial:  flags&flagPathPartial != 0,
		Comm:         cString(raw[56:headerSize]),
	}
	path := raw[headerSize : headerSize+pathBuf]
	ev.Path = joinPath(path[:clamp(int(le.Uint16(raw[48:])), pathMax)], ev.PathPartial)
	if ev.Kind == Map {
		ev.Prot = le.Uint32(raw[44:])
		return ev, nil
	}
	ev.PPID = le.Uint32(raw[32:])
	name := raw[mmapEventSize : mmapEventSize+filenameLen]
	ev.Filename = string(name[:clamp(int(le.Uint16(raw[50:])), filenameLen-1)])
	n := clamp(int(le.Uint16(raw[52:])), argvLen)
	ev.Argv, ev.ArgvTruncated = splitArgv(raw[mmapEventSize+filenameLen : mmapEventSize+filenameLen+argvLen][:n], n == argvLen)
	ev.ParentComm = cString(raw[execEventSize-commLen : execEventSize])
	return ev, nil
}

// joinPath turns the kernel's leaf-first, NUL-terminated names into a path. The kernel stores names unescaped;
// a name cannot contain "/" or NUL, so the split is exact.
func joinPath(b []byte, partial bool) string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		if partial {
			return ""
		}
		return "/"
	}
	names := bytes.Split(b, []byte{0})
	var sb strings.Builder
	for i := len(names) - 1; i >= 0; i-- {
		if i < len(names)-1 || !partial {
			sb.WriteByte('/')
		}
		sb.Write(names[i])
	}
	return sb.String()
}

// kernelDev converts the kernel's internal dev_t (12-bit major above a 20-bit minor) to the st_dev encoding.
func kernelDev(d uint32) uint64 {
	return mkdev(uint64(d>>kernelMinorBits), uint64(d&(1<<kernelMinorBits-1)))
}

// mkdev encodes a device number as glibc's makedev and stat(2)'s st_dev do (written out so that the decoding
// builds, and is tested, on every platform).
func mkdev(major, minor uint64) uint64 {
	return (major&0x00000fff)<<8 | (major&0xfffff000)<<32 | (minor & 0x000000ff) | (minor&0xffffff00)<<12
}

func clamp(n, limit int) int {
	return min(max(n, 0), limit)
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// splitArgv splits the NUL-separated argument block. A block that filled the buffer lost its end: the last,
// unterminated piece is kept and reported as truncated.
func splitArgv(b []byte, full bool) ([]string, bool) {
	if len(b) == 0 {
		return nil, false
	}
	truncated := full && b[len(b)-1] != 0
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	argv := make([]string, len(parts))
	for i, p := range parts {
		argv[i] = string(p)
	}
	return argv, truncated
}
