package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// GitSource describes the git work tree at dir: its HEAD commit (with
// "-dirty" when tracked files differ from it) and that commit's time, which
// every build of the commit shares.
func GitSource(ctx context.Context, dir, version string) (Source, error) {
	rev, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return Source{}, err
	}
	when, err := git(ctx, dir, "log", "-1", "--format=%cI", "HEAD")
	if err != nil {
		return Source{}, err
	}
	created, err := time.Parse(time.RFC3339, when)
	if err != nil {
		return Source{}, fmt.Errorf("commit time %q: %w", when, err)
	}
	// The index is refreshed first, so a file merely touched is not a change.
	if _, err := git(ctx, dir, "update-index", "-q", "--refresh"); err != nil {
		return Source{}, err
	}
	if _, err := git(ctx, dir, "diff-index", "--quiet", "HEAD", "--"); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return Source{}, err
		}
		rev += "-dirty"
	}
	return Source{Dir: dir, Version: version, Revision: rev, Created: created.UTC()}, nil
}

// Dirty says whether the source differs from its commit.
func (s Source) Dirty() bool { return strings.HasSuffix(s.Revision, "-dirty") }

// gitError keeps the exit status of a failed git command.
type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.args, " "), e.err, e.stderr)
}

func (e *gitError) Unwrap() error { return e.err }

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &gitError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}
