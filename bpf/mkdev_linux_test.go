package bpf

import (
	"testing"

	"golang.org/x/sys/unix"
)

// mkdev is written out so the decoding builds everywhere; on Linux it must agree with the C library's encoding.
func TestMkdevMatchesUnix(t *testing.T) {
	for _, d := range [][2]uint32{{0, 0}, {8, 1}, {259, 3}, {0xfff, 0xff}, {0x1000, 0x100}, {0xfffff, 0xfffff}} {
		if got, want := mkdev(uint64(d[0]), uint64(d[1])), unix.Mkdev(d[0], d[1]); got != want {
			t.Errorf("mkdev(%#x, %#x) = %#x, want %#x", d[0], d[1], got, want)
		}
	}
}
