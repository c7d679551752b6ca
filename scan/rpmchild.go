package scan

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// RunRPMChild is the child side of RPMSubprocess: main (and the TestMain of packages whose tests use
// RPMSubprocess) calls it when os.Args[1] is RPMChildCommand, with the arguments after it, and exits with its
// result. It limits itself (RLIMIT_AS, RLIMIT_CPU), parses the one file it is given and writes gob records to
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

// limitSelf sets the child's own resource limits before it reads anything. RLIMIT_CPU ends a spinning parser with
// SIGKILL (soft = hard: the SIGXCPU a lower soft limit sends is ignored by Go programs). RLIMIT_AS makes an
// allocation past the bound fail, which the Go runtime turns into a fatal "out of memory"; since the Go runtime has
// already reserved about 1 GiB of address space it never uses by the time main runs, mem is counted on top of the
// address space the child has now. The Go memory limit at half of mem makes the collector work harder before that.
func limitSelf(cpuSecs, mem int64) error {
	if cpuSecs > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: uint64(cpuSecs), Max: uint64(cpuSecs)}); err != nil {
			return fmt.Errorf("set RLIMIT_CPU: %w", err)
		}
	}
	if mem > 0 {
		as, err := addressSpace()
		if err != nil {
			return err
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: uint64(as + mem), Max: uint64(as + mem)}); err != nil {
			return fmt.Errorf("set RLIMIT_AS: %w", err)
		}
		debug.SetMemoryLimit(mem / 2)
	}
	return nil
}

// addressSpace is this process's virtual memory size (VmSize) in bytes.
func addressSpace() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read address space size: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmSize %q: %w", v, err)
			}
			return kib << 10, nil
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
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
