package compliance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"github.com/rootscan/rootscan/fsaccess"
	"github.com/rootscan/rootscan/report"
)

// Limits bound what one evaluation may cost. Zero fields take the defaults.
type Limits struct {
	// MaxContentBytes bounds file(...).content and the account and config files parsed (default 4 MiB).
	MaxContentBytes int64
	// MaxConfigBytes bounds parse_config, etc/passwd, etc/group and etc/shadow (default 4 MiB).
	MaxConfigBytes int64
	// MaxHashBytes bounds file(...).sha256, which streams (default 1 GiB).
	MaxHashBytes int64
	// MaxDirEntries bounds directory(...).entries (default 100,000).
	MaxDirEntries int
	// MaxGlobResults and MaxGlobDepth bound glob() (defaults 10,000 and 32).
	MaxGlobResults int
	MaxGlobDepth   int
	// MaxEntries and MaxDepth bound the walk behind files() (defaults fsaccess.DefaultWalkMaxEntries and
	// DefaultWalkMaxDepth, the scan walk's own).
	MaxEntries int
	MaxDepth   int
	// MaxTreeBytes bounds what the listing behind files() keeps, in bytes (each entry's path plus its attributes,
	// default 32 MiB: an image of about 250,000 files): a count alone lets 100,000 paths of 4,000 bytes take
	// 400 MB. The walk stops where the listing reaches it; the controls name where (noteTree).
	MaxTreeBytes int
	// MaxDirPath leaves out of files() a directory whose path is longer than this many bytes (default 1,024), as
	// one deeper than MaxDepth is: its entries are not listed, and the controls that read it name it.
	MaxDirPath int
	// CostLimit is the runtime cost bound for one expression, in the units of costEstimator: about one per operation
	// (default 100,000,000: a few seconds of CPU at most; a filter over files("/") costs a few units per entry).
	CostLimit uint64
	// CheckTimeout bounds one expression's wall time, reads included (default 60s).
	CheckTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxContentBytes, 4<<20)
	def(&l.MaxConfigBytes, 4<<20)
	def(&l.MaxHashBytes, 1<<30)
	defInt(&l.MaxDirEntries, 100_000)
	defInt(&l.MaxGlobResults, 10_000)
	defInt(&l.MaxGlobDepth, 32)
	defInt(&l.MaxEntries, fsaccess.DefaultWalkMaxEntries)
	defInt(&l.MaxDepth, fsaccess.DefaultWalkMaxDepth)
	defInt(&l.MaxTreeBytes, 32<<20)
	defInt(&l.MaxDirPath, 1024)
	if l.CostLimit == 0 {
		l.CostLimit = 100_000_000
	}
	if l.CheckTimeout <= 0 {
		l.CheckTimeout = 60 * time.Second
	}
	return l
}

// session is the state of one evaluation on one target: the view, the facts, and what was already read (the
// tree walk, the accounts) so that twenty controls asking for users() parse etc/passwd once.
type session struct {
	ctx  context.Context
	view *view
	// tgt and res are the container's facts; controls read them through the accessors of reads.go (config,
	// security, mounts, inventory), which record the read for the image cache.
	tgt   report.Target
	res   *report.Result
	lim   Limits
	log   *slog.Logger
	types *celTypes

	treeDone bool
	treeData []*fileData
	treeErr  error
	// treeDeep are the directories (paths from the top) the walk left out for depth or path length, in walk order.
	treeDeep []string
	// treeCut is the first path the listing left out for Limits.MaxTreeBytes ("" when none): it and every path
	// after it in walk order are not listed.
	treeCut string
	// treeWarned says an entry of the walk could not be read (see keepTree).
	treeWarned bool
	// treeBase and treeDelta, when set, make the listing from the image's and the container's delta (deltaTree).
	treeBase  *imageTree
	treeDelta *Delta
	// treeMerged says the listing was made that way.
	treeMerged bool
	// ctlFiles are the directories the current control passed to files(), for noteDeep.
	ctlFiles []string
	// fileLists are the CEL lists files() returned, by directory: the baseline's four tree-wide controls each ask
	// for files("/"), and the answer is the same list every time (CEL values are immutable), so a subdirectory's
	// entries are filtered out of the tree once.
	fileLists map[string]ref.Val

	usersDone  bool
	usersData  []User
	usersErr   error
	groupsDone bool
	groupsData []Group
	groupsErr  error
	// usersReads and groupsReads are what parsing the accounts read, recorded again for each control that uses
	// them.
	usersReads, groupsReads []read
}

func (s *session) warn(p string, err error) {
	s.log.Debug("compliance: unreadable entry", "path", p, "err", err)
}

// celTypes are the object types of the resources, shared by every session of an environment.
type celTypes struct {
	file, user, group, pkg, image, security, mount *objectType
}

// newEnv is the CEL environment profiles are compiled in: standard CEL, the string, list, set and math
// extensions, optional values, and the resource functions. The functions are declared here and bound per
// evaluation (late binding), so one compiled profile serves every target.
func newEnv() (*cel.Env, *celTypes, error) {
	ct := &celTypes{
		file: fileType(), user: userType(), group: groupType(), pkg: packageType(),
		image: imageConfigType(), security: securityContextType(), mount: mountType(),
	}
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, nil, err
	}
	prov := newProvider(reg, ct.file, ct.user, ct.group, ct.pkg, ct.image, ct.security, ct.mount)
	late := cel.LateFunctionBinding()
	fn := func(name string, args []*cel.Type, ret *cel.Type) cel.EnvOption {
		id := name
		for _, a := range args {
			id += "_" + a.String()
		}
		return cel.Function(name, cel.Overload(id, args, ret, late))
	}
	str := cel.StringType
	listOf := cel.ListType
	env, err := cel.NewEnv(
		cel.CustomTypeProvider(prov),
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Math(), ext.Encoders(),
		cel.OptionalTypes(),
		cel.EnableMacroCallTracking(),
		cel.CrossTypeNumericComparisons(true),
		cel.ExpressionNodeLimit(10_000),
		cel.ParserRecursionLimit(200),
		fn("file", []*cel.Type{str}, ct.file.celTyp),
		fn("directory", []*cel.Type{str}, ct.file.celTyp),
		fn("files", []*cel.Type{str}, listOf(ct.file.celTyp)),
		fn("glob", []*cel.Type{str}, listOf(str)),
		fn("which", []*cel.Type{str}, listOf(str)),
		fn("parse_config", []*cel.Type{str, str}, cel.DynType),
		fn("packages", nil, listOf(ct.pkg.celTyp)),
		fn("users", nil, listOf(ct.user.celTyp)),
		fn("groups", nil, listOf(ct.group.celTyp)),
		fn("image_config", nil, ct.image.celTyp),
		fn("security_context", nil, ct.security.celTyp),
		fn("mounts", nil, listOf(ct.mount.celTyp)),
		fn("effective_uid", nil, cel.IntType),
		cel.Function("octal", cel.Overload("octal_string", []*cel.Type{str}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				n, err := strconv.ParseInt(string(v.(types.String)), 8, 64)
				if err != nil {
					return types.NewErr("octal(%q): not an octal number", string(v.(types.String)))
				}
				return types.Int(n)
			}))),
		cel.Function("mode_exceeds", cel.Overload("mode_exceeds_int_string", []*cel.Type{cel.IntType, str}, cel.BoolType,
			cel.BinaryBinding(func(mode, max ref.Val) ref.Val {
				m, err := strconv.ParseInt(string(max.(types.String)), 8, 64)
				if err != nil {
					return types.NewErr("mode_exceeds: %q is not an octal mode", string(max.(types.String)))
				}
				return types.Bool(int64(mode.(types.Int))&^m != 0)
			}))),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("compliance CEL environment: %w", err)
	}
	return env, ct, nil
}

// bindings are the resource functions of one session.
func (s *session) bindings() map[string]cel.LateBoundFunction {
	str := func(v ref.Val) string { return string(v.(types.String)) }
	wrap := func(f func() (ref.Val, error)) ref.Val {
		if err := s.ctx.Err(); err != nil {
			return types.WrapErr(err)
		}
		v, err := f()
		if err != nil {
			return types.WrapErr(err)
		}
		return v
	}
	// A files() list wraps each entry as a CEL value only when an expression reaches it, so the 70,000 entries of
	// an image's tree are not copied into a second list of values per call.
	fileList := func(fds []*fileData) ref.Val {
		return types.NewList(fileAdapter{s.types.file}, fds)
	}
	return map[string]cel.LateBoundFunction{
		"file": func(_ string, args ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return s.types.file.value(s.statFile(str(args[0]))), nil })
		},
		"directory": func(_ string, args ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return s.types.file.value(s.statFile(str(args[0]))), nil })
		},
		"files": func(_ string, args ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) {
				dir := cleanPath(str(args[0]))
				s.ctlFiles = append(s.ctlFiles, dir)
				if l, ok := s.fileLists[dir]; ok {
					return l, nil
				}
				fds, err := s.files(dir)
				if err != nil {
					return nil, err
				}
				l := fileList(fds)
				if s.fileLists == nil {
					s.fileLists = map[string]ref.Val{}
				}
				s.fileLists[dir] = l
				return l, nil
			})
		},
		"glob": func(_ string, args ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) {
				l, err := s.glob(str(args[0]))
				if err != nil {
					return nil, err
				}
				return strList(l), nil
			})
		},
		"which": func(_ string, args ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return strList(s.which(str(args[0]))), nil })
		},
		"parse_config": func(_ string, args ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return s.parseConfig(str(args[0]), str(args[1])) })
		},
		"packages": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) {
				var vals []ref.Val
				if res := s.inventory(); res != nil {
					for _, p := range res.Packages {
						vals = append(vals, s.types.pkg.value(p))
					}
				}
				return types.NewRefValList(types.DefaultTypeAdapter, vals), nil
			})
		},
		"users": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) {
				us, err := s.users()
				if err != nil {
					return nil, err
				}
				vals := make([]ref.Val, len(us))
				for i, u := range us {
					vals[i] = s.types.user.value(u)
				}
				return types.NewRefValList(types.DefaultTypeAdapter, vals), nil
			})
		},
		"groups": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) {
				gs, err := s.groups()
				if err != nil {
					return nil, err
				}
				vals := make([]ref.Val, len(gs))
				for i, g := range gs {
					vals[i] = s.types.group.value(g)
				}
				return types.NewRefValList(types.DefaultTypeAdapter, vals), nil
			})
		},
		"image_config": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return s.types.image.value(s), nil })
		},
		"security_context": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return s.types.security.value(s), nil })
		},
		"mounts": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) {
				ms := s.mounts()
				vals := make([]ref.Val, len(ms))
				for i, m := range ms {
					vals[i] = s.types.mount.value(m)
				}
				return types.NewRefValList(types.DefaultTypeAdapter, vals), nil
			})
		},
		"effective_uid": func(string, ...ref.Val) ref.Val {
			return wrap(func() (ref.Val, error) { return types.Int(s.effectiveUID()), nil })
		},
	}
}

// fileAdapter makes the CEL values of a files() list from its *fileData elements.
type fileAdapter struct{ t *objectType }

func (a fileAdapter) NativeToValue(v any) ref.Val {
	if d, ok := v.(*fileData); ok {
		return a.t.value(d)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// parseConfig reads and parses a config file of the view.
func (s *session) parseConfig(p, format string) (ref.Val, error) {
	if _, err := ParseConfig(nil, format); err != nil && !isFormatKnown(format) {
		return nil, err
	}
	fd := s.statFile(p)
	if fd.failure() != nil {
		return nil, fd.failure()
	}
	if fd.st() == nil {
		return nil, fmt.Errorf("parse_config %s: file does not exist", fd.path)
	}
	b, err := s.view.readFile(fd.resolved(), s.lim.MaxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("parse_config: %w", err)
	}
	var v any
	if format == FormatSSHD {
		v, err = parseSSHD(b, s.sshdInclude()) // Include directives read the container's other files
	} else {
		v, err = ParseConfig(b, format)
	}
	if err != nil {
		return nil, fmt.Errorf("parse_config %s: %w", fd.path, err)
	}
	return types.DefaultTypeAdapter.NativeToValue(v), nil
}

func isFormatKnown(f string) bool {
	switch f {
	case FormatKeyValue, FormatINI, FormatYAML, FormatJSON, FormatTOML, FormatSSHD, FormatLoginDefs:
		return true
	}
	return false
}

// costEstimator is CEL's runtime cost model for our checks. The resource functions are charged by the work they do
// (files() by its entries), so CostLimit bounds a check that calls files("/") in a loop, not just one that loops in
// CEL. Every other function of CEL's standard library is charged one unit per call, plus one per 256 bytes of the
// strings and byte strings it is given and one per element of the lists and maps: CostLimit then counts operations,
// with the bytes they scan, rather than CEL's own byte-weighted model.
//
// Why not CEL's model: it charges a regex match by path length times pattern length, so the baseline's credentials
// control over a tree of long paths (28,000 entries of 1,000 bytes, which a container can write into its upper dir)
// cost more than the limit and turned from "failed" into "error", and no longer named the file it exists to find.
// The strings here are bounded before CEL sees them (a path by the listing's MaxDirPath, content by
// MaxContentBytes), and RE2 is linear, so a check's cost is its operation count times a bounded factor: what the
// limit must stop is the count growing with the product of listings. Computing CEL's model also counted every
// string's runes on every call: BenchmarkBaseline took 22% longer with it.
type costEstimator struct{}

// unitCosts are the charges of cheap calls, shared so that CallCost, asked about every call of every check, does not
// allocate for them (the tracker reads the value and keeps no pointer).
var unitCosts = func() (c [64]uint64) {
	for i := range c {
		c[i] = uint64(i)
	}
	return c
}()

// CallCost implements the cost.ActualCostEstimator; extension functions with a cost model of their own (lists.range,
// sets) keep it, as CEL asks theirs first.
func (costEstimator) CallCost(function, _ string, args []ref.Val, result ref.Val) *uint64 {
	switch function {
	case "files", "glob", "packages", "users", "groups":
		var n uint64
		if l, ok := result.(traits.Sizer); ok {
			if size, ok := l.Size().(types.Int); ok && size >= 0 {
				n = uint64(size) + 1
			}
		}
		return &n
	case "file", "directory", "which", "parse_config":
		return &unitCosts[10]
	}
	c := uint64(1)
	for _, a := range args {
		switch v := a.(type) {
		case types.String:
			c += uint64(len(v)) >> 8
		case types.Bytes:
			c += uint64(len(v)) >> 8
		case traits.Lister, traits.Mapper:
			if n, ok := v.(traits.Sizer).Size().(types.Int); ok && n > 0 {
				c += uint64(n)
			}
		}
	}
	if c < uint64(len(unitCosts)) {
		return &unitCosts[c]
	}
	big := c // only this copy escapes: c on the heap would cost every call an allocation
	return &big
}

// ctxReader stops a long read (hashing a big file) when the evaluation's context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
