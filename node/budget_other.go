//go:build !linux

package node

import (
	"fmt"
	"log/slog"

	"github.com/rootscan/rootscan/fsaccess"
)

// ApplyBudget returns (nil, nil) for a zero budget and an error otherwise: the limits are cgroups, which only Linux
// has. The caller runs without them, as on a Linux node that does not allow them.
func ApplyBudget(b Budget, _ *slog.Logger) (*BudgetCgroup, error) {
	if b.Zero() {
		return nil, nil
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("scan budget (a cgroup of its own): %w", fsaccess.ErrNeedsLinux)
}
