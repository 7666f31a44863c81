package main

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
)

// violation is a package-level variable that breaks the rule.
type violation struct {
	pos  token.Position
	name string
	why  string
}

func (v violation) String() string { return fmt.Sprintf("%s: %s: %s", v.pos, v.name, v.why) }

// varKey names a package-level variable across packages (an imported
// variable is another types.Var than the one its own package declares).
type varKey struct{ pkg, name string }

// decl is a package-level variable declared in a non-test file.
type decl struct {
	key       varKey
	v         *types.Var
	pos       token.Position
	table     bool // //lint:table on its declaration
	generated bool
}

// useKind is what a use of a variable may do to it.
type useKind int

const (
	useRead   useKind = iota // yields values nothing can write through
	useWrite                 // writes it or a part of it, or takes its address
	useEscape                // hands a reference out: something may write through it
)

// use is one use of a variable that is not a plain read.
type use struct {
	kind useKind
	pos  token.Position
	what string // "assigned", "passed to a function", ...
}

// checker holds what is found over all the packages.
type checker struct {
	fset  *token.FileSet
	dir   string // positions are relative to it
	decls map[varKey]*decl
	uses  map[varKey][]use // writes and escapes, in the order found
	names map[string]string
}

// run checks the package-level variables of pkgs and returns the
// violations, ordered by position.
func run(fset *token.FileSet, pkgs []*pkg, dir string) []violation {
	c := &checker{fset: fset, dir: dir, decls: map[varKey]*decl{}, uses: map[varKey][]use{}, names: map[string]string{}}
	for _, p := range pkgs {
		c.names[p.path] = p.types.Name()
		for _, f := range p.files {
			c.declare(p, f)
		}
	}
	for _, p := range pkgs {
		for _, f := range p.files {
			c.typedUses(p, f)
		}
		for _, f := range p.tests {
			c.testWrites(p, f)
		}
	}
	var out []violation
	for _, d := range c.decls {
		if why := c.judge(d); why != "" {
			out = append(out, violation{pos: d.pos, name: d.key.name, why: why})
		}
	}
	slices.SortFunc(out, func(a, b violation) int {
		return cmp.Or(cmp.Compare(a.pos.Filename, b.pos.Filename), cmp.Compare(a.pos.Line, b.pos.Line), cmp.Compare(a.name, b.name))
	})
	return out
}

// declare records the package-level variables declared in f.
func (c *checker) declare(p *pkg, f *ast.File) {
	gen := ast.IsGenerated(f)
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			table := hasTableComment(gd.Doc) || hasTableComment(vs.Doc) || hasTableComment(vs.Comment)
			for _, name := range vs.Names {
				if name.Name == "_" {
					continue // holds nothing: an interface assertion
				}
				v, ok := p.info.Defs[name].(*types.Var)
				if !ok {
					continue
				}
				key := varKey{p.path, name.Name}
				c.decls[key] = &decl{key: key, v: v, pos: c.position(name.Pos()), table: table, generated: gen}
			}
		}
	}
}

// hasTableComment reports whether g holds a //lint:table line.
func hasTableComment(g *ast.CommentGroup) bool {
	if g == nil {
		return false
	}
	for _, cm := range g.List {
		if cm.Text == "//lint:table" || strings.HasPrefix(cm.Text, "//lint:table ") {
			return true
		}
	}
	return false
}

// judge says why d breaks the rule, or "" if it does not.
func (c *checker) judge(d *decl) string {
	if d.generated {
		return ""
	}
	var writes []use
	var escape *use
	for i, u := range c.uses[d.key] {
		switch u.kind {
		case useWrite:
			writes = append(writes, u)
		case useEscape:
			if escape == nil {
				escape = &c.uses[d.key][i]
			}
		}
	}
	t := d.v.Type()
	exempt := ""
	switch {
	case implementsError(t):
		exempt = "an error"
	case isRegexp(t):
		exempt = "a compiled regexp"
	}
	if len(writes) > 0 {
		var at []string
		for _, w := range writes[:min(len(writes), 3)] {
			at = append(at, fmt.Sprintf("%s at %s", w.what, short(w.pos)))
		}
		more := ""
		if len(writes) > 3 {
			more = fmt.Sprintf(" and %d more", len(writes)-3)
		}
		return fmt.Sprintf("package state: %s%s (make it a field of the value that owns it)", strings.Join(at, ", "), more)
	}
	if exempt != "" {
		return ""
	}
	if token.IsExported(d.key.name) {
		return "exported variable: any importer may assign it (make it a constant, a function that returns a fresh value, or unexported)"
	}
	if noRefs(t) || escape == nil || d.table {
		return ""
	}
	return fmt.Sprintf("its value (%s) holds references and is %s at %s, where it may be changed (return a fresh value from a function, or mark a table nothing writes //lint:table)",
		types.TypeString(t, types.RelativeTo(d.v.Pkg())), escape.what, short(escape.pos))
}

// position is p's position, its file relative to c.dir.
func (c *checker) position(p token.Pos) token.Position {
	pos := c.fset.Position(p)
	if rel, err := filepath.Rel(c.dir, pos.Filename); err == nil && !strings.HasPrefix(rel, "..") {
		pos.Filename = rel
	}
	return pos
}

// short is pos as file:line.
func short(pos token.Position) string { return fmt.Sprintf("%s:%d", pos.Filename, pos.Line) }

// typedUses classifies every use, in f, of a variable of the module.
func (c *checker) typedUses(p *pkg, f *ast.File) {
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		id, ok := n.(*ast.Ident)
		if !ok {
			return true
		}
		v, ok := p.info.Uses[id].(*types.Var)
		if !ok || v.Pkg() == nil || v.Pkg().Scope().Lookup(v.Name()) != v {
			return true // not a package-level variable
		}
		key := varKey{v.Pkg().Path(), v.Name()}
		d := c.decls[key]
		if d == nil {
			return true // not the module's
		}
		path := stack
		if len(path) >= 2 {
			if sel, ok := path[len(path)-2].(*ast.SelectorExpr); ok && sel.Sel == id {
				path = path[:len(path)-1] // pkg.V: the selector is the expression
			}
		}
		if u := c.classify(p, d, path); u.kind != useRead {
			c.uses[key] = append(c.uses[key], u)
		}
		return true
	})
}

// classify says what the expression at the end of path (a use of d's
// variable) may do to it: it climbs through the parts of the variable
// (fields, elements, dereferences) and judges the context of the largest
// such part.
func (c *checker) classify(p *pkg, d *decl, path []ast.Node) use {
	typeOf := func(e ast.Expr) types.Type {
		if tv, ok := p.info.Types[e]; ok && tv.Type != nil {
			return tv.Type
		}
		return d.v.Type()
	}
	at := func(kind useKind, n ast.Node, what string) use {
		return use{kind: kind, pos: c.position(n.Pos()), what: what}
	}
	cur := path[len(path)-1].(ast.Expr)
	i := len(path) - 2
climb:
	for ; i >= 0; i-- {
		switch pn := path[i].(type) {
		case *ast.ParenExpr:
		case *ast.StarExpr:
		case *ast.TypeAssertExpr:
			if pn.X != cur {
				break climb
			}
		case *ast.IndexExpr:
			if pn.X != cur {
				break climb
			}
		case *ast.SliceExpr:
			if pn.X != cur {
				break climb
			}
			if isArray(typeOf(cur)) {
				return at(useWrite, pn, "sliced (its address taken)")
			}
		case *ast.SelectorExpr:
			if pn.X != cur {
				break climb
			}
			sel := p.info.Selections[pn]
			if sel == nil {
				break climb
			}
			if sel.Kind() != types.FieldVal {
				return c.method(d, pn, sel, typeOf(cur), at)
			}
		default:
			break climb
		}
		cur = path[i].(ast.Expr)
	}
	t := typeOf(cur)
	if i < 0 {
		return at(useEscape, cur, "used")
	}
	switch pn := path[i].(type) {
	case *ast.AssignStmt:
		if slices.Contains(pn.Lhs, cur) {
			return at(useWrite, pn, "assigned")
		}
	case *ast.IncDecStmt:
		return at(useWrite, pn, "incremented or decremented")
	case *ast.UnaryExpr:
		if pn.Op == token.AND {
			return at(useWrite, pn, "addressed (&)")
		}
	case *ast.RangeStmt:
		if pn.Key == cur || pn.Value == cur {
			return at(useWrite, pn, "assigned by a range clause")
		}
		if pn.X == cur {
			if rangeYieldsValues(t) {
				return use{kind: useRead}
			}
			return at(useEscape, cur, "ranged over, yielding references")
		}
	case *ast.CallExpr:
		if pn.Fun == cur {
			if _, ok := t.Underlying().(*types.Signature); ok {
				return use{kind: useRead} // calling a func variable
			}
		}
		if id, ok := ast.Unparen(pn.Fun).(*ast.Ident); ok {
			if b, ok := p.info.Uses[id].(*types.Builtin); ok {
				switch name := b.Name(); {
				case name == "len" || name == "cap":
					return use{kind: useRead}
				case writingBuiltin(name) && len(pn.Args) > 0 && pn.Args[0] == cur:
					return at(useWrite, pn, "changed by "+name)
				}
			}
		}
		if noRefs(t) {
			return use{kind: useRead}
		}
		return at(useEscape, cur, "passed to a function")
	case *ast.BinaryExpr:
		return use{kind: useRead} // a comparison, or arithmetic on a copy
	}
	if noRefs(t) {
		return use{kind: useRead}
	}
	what := "used as a value"
	switch path[i].(type) {
	case *ast.ReturnStmt:
		what = "returned"
	case *ast.AssignStmt, *ast.ValueSpec:
		what = "copied into another variable"
	case *ast.CompositeLit, *ast.KeyValueExpr:
		what = "put in a composite literal"
	case *ast.SendStmt:
		what = "sent on a channel"
	}
	return at(useEscape, cur, what)
}

// method judges x.M, x being (a part of) d's variable.
func (c *checker) method(d *decl, sel *ast.SelectorExpr, s *types.Selection, xt types.Type, at func(useKind, ast.Node, string) use) use {
	fn, _ := s.Obj().(*types.Func)
	if fn == nil {
		return at(useEscape, sel, "used as a method value")
	}
	if isRegexp(d.v.Type()) && fn.Name() == "Longest" {
		return at(useWrite, sel, "changed by Longest")
	}
	recv := fn.Type().(*types.Signature).Recv()
	ptrRecv := recv != nil && isPointer(recv.Type())
	switch {
	case ptrRecv && !isPointer(xt) && !types.IsInterface(xt):
		return at(useWrite, sel, fmt.Sprintf("the receiver of %s, whose receiver is a pointer (its address taken)", fn.Name()))
	case noRefs(xt):
		return use{kind: useRead} // the method gets a copy
	}
	return at(useEscape, sel, fmt.Sprintf("the receiver of %s", fn.Name()))
}

// testWrites finds, syntactically, the writes of a test file to the
// package-level variables of the module: to an unresolved identifier (a
// variable of the package, in an in-package test) or to a variable of an
// imported package of the module.
func (c *checker) testWrites(p *pkg, f *ast.File) {
	inPkg := f.Name.Name == p.types.Name()
	imports := map[string]string{} // local name → path, the module's packages only
	for _, is := range f.Imports {
		path := strings.Trim(is.Path.Value, `"`)
		name, ok := c.names[path]
		if !ok {
			continue
		}
		if is.Name != nil {
			name = is.Name.Name
		}
		imports[name] = path
	}
	target := func(e ast.Expr) (varKey, bool) {
		for {
			switch x := e.(type) {
			case *ast.ParenExpr:
				e = x.X
			case *ast.StarExpr:
				e = x.X
			case *ast.IndexExpr:
				e = x.X
			case *ast.SliceExpr:
				e = x.X
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Obj == nil {
					if path, ok := imports[id.Name]; ok {
						return varKey{path, x.Sel.Name}, true
					}
				}
				e = x.X
			case *ast.Ident:
				if x.Obj == nil && inPkg {
					return varKey{p.path, x.Name}, true
				}
				return varKey{}, false
			default:
				return varKey{}, false
			}
		}
	}
	write := func(e ast.Expr, n ast.Node, what string) {
		if key, ok := target(e); ok && c.decls[key] != nil {
			c.uses[key] = append(c.uses[key], use{kind: useWrite, pos: c.position(n.Pos()), what: what + " in a test"})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.CallExpr:
			if id, ok := s.Fun.(*ast.Ident); ok && id.Obj == nil && writingBuiltin(id.Name) && len(s.Args) > 0 {
				write(s.Args[0], s, "changed by "+id.Name)
			}
		case *ast.AssignStmt:
			if s.Tok != token.DEFINE {
				for _, l := range s.Lhs {
					write(l, s, "assigned")
				}
			}
		case *ast.IncDecStmt:
			write(s.X, s, "incremented or decremented")
		case *ast.UnaryExpr:
			if s.Op == token.AND {
				write(s.X, s, "addressed (&)")
			}
		case *ast.RangeStmt:
			if s.Tok == token.ASSIGN {
				for _, e := range []ast.Expr{s.Key, s.Value} {
					if e != nil {
						write(e, s, "assigned by a range clause")
					}
				}
			}
		}
		return true
	})
}

// writingBuiltin reports whether the builtin changes what its first
// argument refers to (append: the spare capacity of a slice).
func writingBuiltin(name string) bool {
	return name == "append" || name == "clear" || name == "copy" || name == "delete"
}

// noRefs reports whether nothing can be written through a copy of a
// value of type t: it holds no pointer, slice, map, chan, func or
// interface.
func noRefs(t types.Type) bool {
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Kind() != types.UnsafePointer && u.Kind() != types.UntypedNil
	case *types.Array:
		return noRefs(u.Elem())
	case *types.Struct:
		for f := range u.Fields() {
			if !noRefs(f.Type()) {
				return false
			}
		}
		return true
	case *types.Tuple: // v, ok := m[k]
		for v := range u.Variables() {
			if !noRefs(v.Type()) {
				return false
			}
		}
		return true
	}
	return false
}

// rangeYieldsValues reports whether ranging over a value of type t
// yields only values nothing can write through.
func rangeYieldsValues(t types.Type) bool {
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return true // a string's runes, an integer's
	case *types.Slice:
		return noRefs(u.Elem())
	case *types.Array:
		return noRefs(u.Elem())
	case *types.Map:
		return noRefs(u.Key()) && noRefs(u.Elem())
	}
	return false
}

func isPointer(t types.Type) bool {
	_, ok := t.Underlying().(*types.Pointer)
	return ok
}

func isArray(t types.Type) bool {
	_, ok := t.Underlying().(*types.Array)
	return ok
}

func implementsError(t types.Type) bool {
	return types.Implements(t, types.Universe.Lookup("error").Type().Underlying().(*types.Interface))
}

func isRegexp(t types.Type) bool {
	p, ok := t.(*types.Pointer)
	if !ok {
		return false
	}
	n, ok := p.Elem().(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "regexp" && n.Obj().Name() == "Regexp"
}
