//go:build !linux

package scan

import (
	"fmt"
	"os"
	"os/exec"
)

// selfExecutable is the running binary's path.
func selfExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the running executable: %w", err)
	}
	return exe, nil
}

// isolateChild leaves the child as it is: without Linux's Pdeathsig (and, on Windows, process groups) the child is
// the process alone, which exec's default cancel kills on timeout. The parser starts no processes of its own.
func isolateChild(*exec.Cmd) {}

// killChildGroup has nothing to do: the child has no group of its own, and Wait has reaped it.
func killChildGroup(*exec.Cmd) error { return nil }
