// Command hostile writes the hostile corpus of issue 13 (internal/testbed/hostile) under a directory, one root per
// case, for measuring `rootscan scan --dir` by hand: hostile -out /var/tmp/hostile.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/rootscan/rootscan/internal/testbed/hostile"
)

func main() {
	out := flag.String("out", "", "directory to write the corpus into (one subdirectory per case)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "hostile: -out is required")
		os.Exit(2)
	}
	roots, err := hostile.Write(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(roots))
	for n := range roots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Println(roots[n])
	}
}
