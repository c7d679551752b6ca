package scan

import (
	"context"
	"sync"
)

// Progress is where a check is: the analyzer running and the file it reads. A check stopped by a budget (deadline,
// memory) or a process that died in one says from it where the cost was, so an operator can find the file. Run and
// the shared walk keep it current when the context carries one (WithProgress); without one they pay nothing.
type Progress struct {
	mu             sync.Mutex
	analyzer, path string
}

// Set records the step a check is in; path is "" for a step that is not at one file. It is safe on a nil Progress.
func (p *Progress) Set(analyzer, path string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.analyzer, p.path = analyzer, path
	p.mu.Unlock()
}

// Where is the last step Set recorded. It is safe on a nil Progress.
func (p *Progress) Where() (analyzer, path string) {
	if p == nil {
		return "", ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.analyzer, p.path
}

type progressKey struct{}

// WithProgress returns a context whose Runs keep p current.
func WithProgress(ctx context.Context, p *Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// ProgressFrom is the context's Progress, or nil.
func ProgressFrom(ctx context.Context) *Progress {
	p, _ := ctx.Value(progressKey{}).(*Progress)
	return p
}
