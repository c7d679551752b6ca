package scan

import (
	"debug/elf"
	"io"
)

// goOnlyBinary is NewBinary with its Rust reader off, so a test sees what the Go reader alone finds.
func goOnlyBinary() Analyzer { return newBinaryAnalyzer(goBinaryName, true, false) }

// rustOnlyBinary is NewBinary with its Go reader off.
func rustOnlyBinary() Analyzer { return newBinaryAnalyzer(rustBinaryName, false, true) }

// mayBeGo is mayBeGoELF on unparsed bytes, the way binaryAnalyzer parses them.
func mayBeGo(r io.ReaderAt) bool {
	f, err := elf.NewFile(r)
	if err != nil {
		f = nil
	}
	return mayBeGoELF(f)
}
