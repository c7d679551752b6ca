package node

import (
	"context"
	"sort"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootscan/rootscan/cri"
	"github.com/rootscan/rootscan/report"
	"github.com/rootscan/rootscan/scan"
)

// ImageConfigResolver reads the OCI config of a container's image; fsaccess.Snapshots is the real one.
type ImageConfigResolver interface {
	ImageConfig(ctx context.Context, containerID string) (*ocispec.ImageConfig, error)
}

// TargetAnalyzers gives the analyzers that need to know their target (compliance controls read its image config,
// security context and volumes). They run after Scanner.Analyzers; release runs once the scan of the target is
// done (to close the volumes it opened), and may be nil.
type TargetAnalyzers func(ctx context.Context, t report.Target) (analyzers []scan.Analyzer, release func())

// ImageConfigOf turns an OCI image config into the report's, for containers and --oci layouts alike.
func ImageConfigOf(c ocispec.ImageConfig) *report.ImageConfig {
	out := &report.ImageConfig{
		User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, Labels: c.Labels,
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	sort.Strings(out.ExposedPorts)
	return out
}

// securityOf copies the CRI's security context into the report's words.
func securityOf(sc *cri.SecurityContext) *report.SecurityContext {
	if sc == nil {
		return nil
	}
	out := &report.SecurityContext{
		RunAsUser: sc.RunAsUser, RunAsGroup: sc.RunAsGroup, Privileged: sc.Privileged,
		ReadOnlyRootFilesystem: sc.ReadOnlyRootfs, CapabilitiesAdd: sc.CapabilitiesAdd,
		CapabilitiesDrop: sc.CapabilitiesDrop, Capabilities: sc.Bounding,
	}
	if sc.NoNewPrivs {
		f := false
		out.AllowPrivilegeEscalation = &f
	}
	return out
}

func mountsOf(ms []cri.Mount) []report.Mount {
	var out []report.Mount
	for _, m := range ms {
		out = append(out, report.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, ReadOnly: m.ReadOnly})
	}
	return out
}
