package compliance

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// objectType is a CEL struct type backed by a Go value whose fields are computed on access. Declaring the fields
// lets the type checker reject `file("/x").contnet` when the profile loads, and computing them on access means
// `file("/x").mode` never reads the file's content.
type objectType struct {
	name   string
	celTyp *types.Type
	order  []string
	fields map[string]objectField
}

// objectField is one field: its CEL type and how to get it from the Go value. get may fail (a read error, a file
// over the size bound); the failure becomes the check's error result.
type objectField struct {
	typ *types.Type
	get func(v any) (ref.Val, error)
}

func newObjectType(name string) *objectType {
	return &objectType{name: name, celTyp: types.NewObjectType(name), fields: map[string]objectField{}}
}

func (t *objectType) field(name string, typ *types.Type, get func(v any) (ref.Val, error)) *objectType {
	t.order = append(t.order, name)
	t.fields[name] = objectField{typ: typ, get: get}
	return t
}

// value wraps a Go value as a CEL value of this type.
func (t *objectType) value(v any) ref.Val { return &object{t: t, v: v} }

// object is a CEL value of an objectType. It implements traits.Indexer for the dynamically typed paths (a value
// inside a dyn map), while statically typed field selections go through the provider's GetFrom.
type object struct {
	t *objectType
	v any
}

var _ traits.Indexer = (*object)(nil)

func (o *object) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return nil, fmt.Errorf("type conversion of %s to %v not supported", o.t.name, typeDesc)
}

func (o *object) ConvertToType(typeVal ref.Type) ref.Val {
	if typeVal == types.TypeType {
		return o.t.celTyp
	}
	return types.NewErr("type conversion of %s to %s not supported", o.t.name, typeVal.TypeName())
}

func (o *object) Equal(other ref.Val) ref.Val {
	ot, ok := other.(*object)
	return types.Bool(ok && ot.t == o.t && ot.v == o.v)
}

func (o *object) Type() ref.Type { return o.t.celTyp }
func (o *object) Value() any     { return o.v }

// Get implements traits.Indexer.
func (o *object) Get(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.NewErr("no such key: %v", index)
	}
	f, ok := o.t.fields[string(name)]
	if !ok {
		return types.NewErr("no such field %q on %s", string(name), o.t.name)
	}
	v, err := f.get(o.v)
	if err != nil {
		return types.WrapErr(err)
	}
	return v
}

// provider adds the objectTypes to CEL's own type registry, which still serves everything else.
type provider struct {
	*types.Registry
	objects map[string]*objectType
}

func newProvider(base *types.Registry, objs ...*objectType) *provider {
	p := &provider{Registry: base, objects: map[string]*objectType{}}
	for _, o := range objs {
		p.objects[o.name] = o
	}
	return p
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if o, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(o.celTyp), true
	}
	return p.Registry.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.objects[name]; ok {
		return o.order, true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	o, ok := p.objects[name]
	if !ok {
		return p.Registry.FindStructFieldType(name, field)
	}
	f, ok := o.fields[field]
	if !ok {
		return nil, false
	}
	return &types.FieldType{
		Type:  f.typ,
		IsSet: func(any) bool { return true },
		GetFrom: func(v any) (any, error) {
			if obj, ok := v.(*object); ok {
				v = obj.v
			}
			return f.get(v)
		},
	}, true
}

// NewValue refuses to build our objects from CEL literals: they describe the scanned root and only the resource
// functions make them.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("%s values cannot be constructed in an expression", name)
	}
	return p.Registry.NewValue(name, fields)
}
