package inspec

import (
	"github.com/rootscan/rootscan/compliance/inspec/ruby"
)

// Library is one libraries/*.rb file: the custom resources it defines.
type Library struct {
	Name string
	AST  *ruby.File
	Err  error
	// Resources are the classes declared as InSpec resources (class X < Inspec.resource(1) with name 'x').
	Resources []*LibResource
}

// LibResource is a custom resource and the resources its methods call.
type LibResource struct {
	Name  string
	Class string
	File  string
	Line  int
	// Decl is the class definition.
	Decl *ruby.Class
	// Calls are the resources its code calls (inspec.command(...), file(...)), for the classifier.
	Calls []*ruby.Call
}

func parseLibrary(name string, src []byte, lim ruby.Limits) *Library {
	lib := &Library{Name: name}
	f, err := ruby.Parse(name, src, lim)
	if err != nil {
		lib.Err = err
		return lib
	}
	lib.AST = f
	for _, n := range f.Body {
		ruby.Walk(n, func(n ruby.Node) bool {
			cl, ok := n.(*ruby.Class)
			if !ok || cl.Name == nil {
				return true
			}
			if r := resourceClass(name, cl); r != nil {
				lib.Resources = append(lib.Resources, r)
			}
			return true
		})
	}
	return lib
}

// resourceClass returns the resource a class declares with `name 'x'`, or nil for helper classes.
func resourceClass(file string, cl *ruby.Class) *LibResource {
	r := &LibResource{Class: cl.Name.Name, File: file, Line: cl.Line, Decl: cl}
	for _, n := range cl.Body {
		if c, ok := n.(*ruby.Call); ok && c.Recv == nil && c.Name == "name" && len(c.Args) == 1 {
			r.Name, _ = ruby.StringValue(c.Args[0])
		}
	}
	if r.Name == "" {
		return nil
	}
	for _, n := range cl.Body {
		ruby.Walk(n, func(n ruby.Node) bool {
			if c, ok := n.(*ruby.Call); ok && (c.Recv == nil || isIdent(c.Recv, "inspec")) {
				r.Calls = append(r.Calls, c)
			}
			return true
		})
	}
	return r
}
