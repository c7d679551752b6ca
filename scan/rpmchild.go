package scan

import (
	"bufio"
	"context"
	"encoding/gob"
	"flag"
	"fmt"
	"os"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// RunRPMChild is the child side of RPMSubprocess: main (and the TestMain of packages whose tests use
// RPMSubprocess) calls it when os.Args[1] is RPMChildCommand, with the arguments after it, and exits with its
// result. It limits itself (limitSelf: on Linux RLIMIT_AS and RLIMIT_CPU), parses the one file it is given and writes gob records to
// stdout. Exit 0: parsed; 1: the database is damaged (the message is in the output); 3: bad arguments. A panic in
// go-rpmdb ends it with Go's exit 2, a limit with a signal, and the parent reports either as a file error.
func RunRPMChild(args []string) int {
	fl := flag.NewFlagSet(RPMChildCommand, flag.ContinueOnError)
	timeout := fl.Duration("timeout", rpmParseTimeout, "wall-clock bound of the parse")
	cpu := fl.Int64("max-cpu", 0, "RLIMIT_CPU in seconds; 0 leaves it")
	mem := fl.Int64("max-memory", 0, "RLIMIT_AS in bytes; 0 leaves it")
	preflight := fl.Bool("preflight", true, "check Berkeley DB and ndb structures before go-rpmdb reads them")
	if err := fl.Parse(args); err != nil || fl.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s [flags] PATH\n", RPMChildCommand)
		return 3
	}
	if err := limitSelf(*cpu, *mem); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", RPMChildCommand, err)
		return 3
	}
	// go-rpmdb prints to stdout on some damaged ndb files; stdout carries the records, so anything else goes to
	// stderr.
	out := os.Stdout
	os.Stdout = os.Stderr

	var res rpmChildResult
	pkgs, err := parseRPMDB(context.Background(), fl.Arg(0), *timeout, *preflight)
	code := 0
	if err != nil {
		res.Err, code = err.Error(), 1
	} else {
		res.Packages = make([]*rpmdb.PackageInfo, len(pkgs))
		for i, p := range pkgs {
			res.Packages[i] = rpmRecordForParent(p)
		}
	}
	w := bufio.NewWriterSize(out, 1<<16)
	if err := gob.NewEncoder(w).Encode(&res); err != nil {
		fmt.Fprintf(os.Stderr, "%s: write records: %v\n", RPMChildCommand, err)
		return 3
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: write records: %v\n", RPMChildCommand, err)
		return 3
	}
	return code
}

// rpmRecordForParent keeps the fields the rpm analyzers read (rpmPackage, rpmIntegrityRun.checkPackage through
// InstalledFiles, unowned files through InstalledFileNames) and drops the rest (dependency lists, summaries), which
// would only make the output larger.
func rpmRecordForParent(p *rpmdb.PackageInfo) *rpmdb.PackageInfo {
	return &rpmdb.PackageInfo{
		Epoch: p.Epoch, Name: p.Name, Version: p.Version, Release: p.Release, Arch: p.Arch, SourceRpm: p.SourceRpm,
		DigestAlgorithm: p.DigestAlgorithm,
		BaseNames:       p.BaseNames, DirIndexes: p.DirIndexes, DirNames: p.DirNames,
		FileSizes: p.FileSizes, FileDigests: p.FileDigests, FileModes: p.FileModes, FileFlags: p.FileFlags,
		UserNames: p.UserNames, GroupNames: p.GroupNames,
	}
}
