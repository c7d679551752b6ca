package scan

// DefaultAnalyzers is every analyzer rootscan runs. Run orders them by what each Requires (see Order); where that
// leaves a choice, this list's order stands, and it is the order of a result's packages: the OS package databases,
// then the programs and language packages, then the unowned executables and the distroless verdict.
func DefaultAnalyzers(opts ...AnalyzerOption) []Analyzer {
	return []Analyzer{
		NewOSRelease(),
		NewDpkg(),
		NewApk(),
		NewRPM(opts...),
		NewBinary(),
		NewPython(),
		NewJava(),
		NewNpm(),
		NewRuby(),
		NewDotnet(),
		NewComposer(),
		NewUnownedFiles(opts...),
		NewDistroless(),
	}
}

// AnalyzerOption changes how the analyzers that take it do their work, not what they find: the same options go to
// DefaultAnalyzers and to the analyzers a caller adds (NewRPMIntegrity), so one choice covers every reader of a
// format.
type AnalyzerOption func(*analyzerOptions)

type analyzerOptions struct {
	rpm RPMParser
}

// WithRPMParser makes the rpm analyzers (NewRPM, NewRPMIntegrity, NewUnownedFiles) parse databases with p. The
// default parses in process (InProcessRPM); a long-running scanner should pass an RPMSubprocess, so that a hostile
// database that crashes or wedges go-rpmdb costs one file error instead of the process.
func WithRPMParser(p RPMParser) AnalyzerOption {
	return func(o *analyzerOptions) { o.rpm = p }
}

func collectOptions(opts []AnalyzerOption) analyzerOptions {
	var o analyzerOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
