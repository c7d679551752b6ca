package scan

// DefaultAnalyzers is every analyzer rootscan runs, in the order Run needs: os-release first (RPM ecosystems and
// purls depend on the OS), then the OS package databases, then the file analyzers (one shared walk; unowned
// executables among them), and distroless detection last because it reads the packages the others found.
func DefaultAnalyzers() []Analyzer {
	return []Analyzer{
		NewOSRelease(),
		NewDpkg(),
		NewApk(),
		NewRPM(),
		NewBinary(),
		NewPython(),
		NewJava(),
		NewNpm(),
		NewRuby(),
		NewDotnet(),
		NewComposer(),
		NewUnownedFiles(),
		NewDistroless(),
	}
}
