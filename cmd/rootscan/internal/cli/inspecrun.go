package cli

import (
	"context"
	"fmt"
	"os"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootscan/rootscan/compliance"
	"github.com/rootscan/rootscan/compliance/inspec"
)

// maxInputFileBytes bounds an --input-file: a few thousand inputs at most.
const maxInputFileBytes = 4 << 20

// inspecRunners loads the InSpec profiles among srcs with the inputs of the --input-file files (later files
// win, as in InSpec) and returns them with the other profile sources.
func inspecRunners(ctx context.Context, srcs, inputFiles []string) ([]compliance.ProfileRunner, []string, error) {
	var rest []string
	var profiles []*inspec.Profile
	for _, src := range srcs {
		if !isInSpecProfile(src) {
			rest = append(rest, src)
			continue
		}
		p, err := inspec.Load(ctx, src, inspec.Limits{})
		if err != nil {
			return nil, nil, usageError{fmt.Sprintf("--profile %s: %v", src, err)}
		}
		profiles = append(profiles, p)
	}
	if len(profiles) == 0 {
		if len(inputFiles) > 0 {
			return nil, nil, usageError{"--input-file needs an InSpec --profile"}
		}
		return nil, rest, nil
	}
	inputs := map[string]any{}
	for _, f := range inputFiles {
		if err := readInputFile(f, inputs); err != nil {
			return nil, nil, usageError{err.Error()}
		}
	}
	runners := make([]compliance.ProfileRunner, len(profiles))
	for i, p := range profiles {
		runners[i] = inspec.NewRunner(p, inputs, inspec.EvalLimits{})
	}
	return runners, rest, nil
}

// readInputFile reads an InSpec --input-file: a YAML map of input names to values.
func readInputFile(name string, into map[string]any) error {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("--input-file: %w", err)
	}
	if st.Size() > maxInputFileBytes {
		return fmt.Errorf("--input-file %s: larger than %d bytes", name, maxInputFileBytes)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("--input-file: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("--input-file %s: %w", name, err)
	}
	for k, v := range m {
		into[k] = v
	}
	return nil
}
