package cli

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

// byteSize is a flag of bytes that also reads sizes as people write them: 2GiB, 512MiB, 1.5 GB (IEC suffixes are
// powers of 1024, SI ones of 1000; a bare number is bytes).
type byteSize int64

func (b *byteSize) String() string { return humanize.IBytes(uint64(*b)) }

func (b *byteSize) Type() string { return "bytes" }

func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("want a size such as 2GiB, 512MiB or 1000000: %w", err)
	}
	if n == 0 || n > math.MaxInt64 {
		return fmt.Errorf("%d bytes: want more than 0", n)
	}
	*b = byteSize(n)
	return nil
}
