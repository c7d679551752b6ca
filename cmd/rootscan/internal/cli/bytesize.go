package cli

import (
	"fmt"
	"math"
	"strings"

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

// budgetSize is a byteSize that also takes 0, for budgets where 0 turns the bound off.
type budgetSize int64

func (b *budgetSize) String() string { return humanize.IBytes(uint64(*b)) }

func (b *budgetSize) Type() string { return "bytes" }

func (b *budgetSize) Set(s string) error {
	if strings.TrimSpace(s) == "0" {
		*b = 0
		return nil
	}
	return (*byteSize)(b).Set(s)
}
