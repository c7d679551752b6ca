package compliance

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// Sources name where an engine's profiles, waivers and scope come from. The daemon keeps them so that it can read
// everything again on SIGHUP: profiles are files an operator (or a ConfigMap update) changes under a running
// daemon.
type Sources struct {
	// Profiles are "builtin:NAME", files or folders, evaluated in this order.
	Profiles []string
	// Waivers and Scope are files; "" means none.
	Waivers string
	Scope   string
	Limits  Limits
	// Runners are profiles in other languages (InSpec), loaded by the caller; a reload keeps them.
	Runners []ProfileRunner
}

// Load reads and compiles everything s names into a new Engine. Every problem of every file is reported together,
// each as "file:line: what". No profiles at all is not an error: the engine is nil.
func (s Sources) Load(log *slog.Logger) (*Engine, error) {
	e, _, err := s.load(log)
	return e, err
}

// load also returns a digest of everything read, so a reload can tell whether anything changed.
func (s Sources) load(log *slog.Logger) (*Engine, [32]byte, error) {
	var none [32]byte
	if len(s.Profiles) == 0 && len(s.Runners) == 0 {
		return nil, none, nil
	}
	l, err := NewLoader(s.Limits)
	if err != nil {
		return nil, none, err
	}
	h := sha256.New()
	var profiles []*Profile
	var errs []error
	for _, src := range s.Profiles {
		ps, err := l.Load(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range ps {
			fmt.Fprintf(h, "profile %s %s\n", p.Source, p.SHA256)
		}
		profiles = append(profiles, ps...)
	}
	e := NewEngine(l, profiles)
	e.Log, e.Runners = log, s.Runners
	if s.Waivers != "" {
		b, err := os.ReadFile(s.Waivers)
		if err != nil {
			errs = append(errs, fmt.Errorf("load waivers: %w", err))
		} else if e.Waivers, err = ParseWaivers(s.Waivers, b); err != nil {
			errs = append(errs, err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "waivers %s %x\n", s.Waivers, sum)
	}
	if s.Scope != "" {
		b, err := os.ReadFile(s.Scope)
		if err != nil {
			errs = append(errs, fmt.Errorf("load scope: %w", err))
		} else if e.Scope, err = ParseScope(s.Scope, b); err != nil {
			errs = append(errs, err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "scope %s %x\n", s.Scope, sum)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, none, err
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return e, d, nil
}

// Live is the daemon's current engine, swapped whole on Reload: a container check that started with the old
// profiles finishes with them, and no check ever sees new profiles with old waivers.
type Live struct {
	src    Sources
	log    *slog.Logger
	mu     sync.Mutex // one reload at a time
	cur    atomic.Pointer[Engine]
	digest atomic.Pointer[[32]byte]
}

// NewLive loads src once; a broken profile at start is an error (the daemon must not run without its policy).
// The engine is nil when src names no profiles.
func NewLive(src Sources, log *slog.Logger) (*Live, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e, d, err := src.load(log)
	if err != nil {
		return nil, err
	}
	l := &Live{src: src, log: log}
	l.cur.Store(e)
	l.digest.Store(&d)
	return l, nil
}

// Engine is the engine to evaluate with now; nil when there are no profiles.
func (l *Live) Engine() *Engine { return l.cur.Load() }

// Reload reads and compiles the sources again and swaps the engine in when all of it is valid. On any error the
// current engine stays, and each problem is logged with its file and line, so a typo in a ConfigMap never leaves
// a node unchecked. changed is false when nothing read differs from what is in use (no need to re-check
// containers).
func (l *Live) Reload() (changed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, d, err := l.src.load(l.log)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			l.log.Error("compliance profiles not reloaded; keeping the previous ones", "problem", line)
		}
		return false, fmt.Errorf("reload compliance profiles: %w", err)
	}
	if *l.digest.Load() == d {
		l.log.Info("compliance profiles unchanged")
		return false, nil
	}
	l.cur.Store(e)
	l.digest.Store(&d)
	n := 0
	if e != nil {
		for _, p := range e.Profiles {
			n += len(p.Controls)
		}
	}
	l.log.Info("compliance profiles reloaded", "profiles", len(l.src.Profiles), "controls", n)
	return true, nil
}
