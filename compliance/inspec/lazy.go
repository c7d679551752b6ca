package inspec

import (
	"errors"

	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// unavailable is a value file-level code could not compute because it needs what a filesystem cannot answer
// (dev-sec's ssh-baseline takes its inputs' defaults from a library that runs sshd -V). The variable holds
// the reason, and only the controls that use it are skipped, with it.
type unavailable struct{ reason string }

func (u *unavailable) String() string { return "(unavailable: " + u.reason + ")" }

// poisoned returns the skip of the first unavailable value among vs.
func poisoned(vs ...any) error {
	for _, v := range vs {
		if u, ok := v.(*unavailable); ok {
			return &skipError{reason: u.reason}
		}
	}
	return nil
}

// lazyVal is an RSpec let: its block runs when the name is first used, in the describe that declared it.
type lazyVal struct {
	p    *proc
	done bool
	v    any
	err  error
}

func (ev *evaluator) force(l *lazyVal) (any, error) {
	if !l.done {
		l.done = true
		l.v, l.err = ev.callProc(l.p)
	}
	return l.v, l.err
}

// inspecHandle is `inspec` in control and library code: inspec.file(...) is file(...).
type inspecHandle struct{}

func (inspecHandle) String() string { return "Inspec" }

func (inspecHandle) method(ev *evaluator, name string, args []any, _ *proc) (any, bool, error) {
	if isMatcher(name) {
		return nil, false, nil
	}
	v, ok, err := ev.resource(name, args)
	return v, ok, err
}

// inputObject is input_object('x'): the input with its name and value.
type inputObject struct {
	name  string
	value any
}

func (i *inputObject) String() string { return "Input " + i.name }

func (i *inputObject) method(_ *evaluator, name string, _ []any, _ *proc) (any, bool, error) {
	switch name {
	case "name":
		return i.name, true, nil
	case "value":
		return i.value, true, nil
	}
	return nil, false, nil
}

// fileStatement evaluates one file-level statement. An assignment whose value needs what a filesystem cannot
// answer binds its variables to that reason instead of stopping the file.
func (ev *evaluator) fileStatement(n ruby.Node, sc *scope) error {
	_, err := ev.eval(n, sc)
	var sk *skipError
	if err == nil || !errors.As(err, &sk) {
		return err
	}
	u := &unavailable{reason: sk.reason}
	switch a := n.(type) {
	case *ruby.Assign:
		if id, ok := a.Lhs.(*ruby.Ident); ok {
			sc.assign(id.Name, u)
			return nil
		}
	case *ruby.MultiAssign:
		for _, l := range a.Lhs {
			if id, ok := l.(*ruby.Ident); ok {
				sc.assign(id.Name, u)
			}
		}
		return nil
	}
	return err
}
