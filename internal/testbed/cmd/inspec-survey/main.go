// Command inspec-survey loads InSpec profiles as a user brings them (public baselines cloned by hand, never
// committed) and prints how many files parse, how many controls are found, and the static run/skip split with the
// top skip reasons: the measurement behind the InSpec reader's coverage figures.
//
//	go run ./internal/testbed/cmd/inspec-survey DIR...
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/rootscan/rootscan/compliance/inspec"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: inspec-survey PROFILE_DIR...")
		os.Exit(2)
	}
	failed := false
	for _, dir := range os.Args[1:] {
		if err := survey(dir); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func survey(dir string) error {
	p, err := inspec.Load(context.Background(), dir, inspec.Limits{})
	if err != nil {
		return err
	}
	files, parsed := len(p.Files)+len(p.Libraries), 0
	for _, f := range p.Files {
		if f.Err == nil {
			parsed++
		} else {
			fmt.Printf("  %v\n", f.Err)
		}
	}
	for _, l := range p.Libraries {
		if l.Err == nil {
			parsed++
		} else {
			fmt.Printf("  %v\n", l.Err)
		}
	}
	vs := p.Check(inspec.DefaultCatalog())
	run := 0
	for _, v := range vs {
		if v.Run {
			run++
		}
	}
	fmt.Printf("%s %s: %d/%d files parse, %d controls, %d run, %d skipped, sha256 %s\n",
		p.Name, p.Version, parsed, files, len(vs), run, len(vs)-run, p.SHA256)
	for i, r := range inspec.SkipReasons(vs) {
		if i == 8 {
			break
		}
		fmt.Printf("  %4d  %s\n", r.Controls, strings.TrimSpace(r.Reason))
	}
	return nil
}
