package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// listed is what `go list -json` says of a package.
type listed struct {
	ImportPath   string
	Dir          string
	Name         string
	GoFiles      []string
	CgoFiles     []string
	TestGoFiles  []string
	XTestGoFiles []string
	Export       string
	DepOnly      bool
	Error        *struct{ Err string }
}

// pkg is a package of the module, type-checked from its non-test files,
// with its test files parsed.
type pkg struct {
	path  string
	types *types.Package
	info  *types.Info
	files []*ast.File // non-test files, generated ones included
	tests []*ast.File // in-package (package name) and external (name_test) test files
}

// load lists the packages matching patterns in dir, with their
// dependencies' export data, and type-checks the packages that matched.
func load(fset *token.FileSet, dir string, patterns []string) ([]*pkg, error) {
	args := append([]string{"list", "-e", "-export", "-deps",
		"-json=ImportPath,Dir,Name,GoFiles,CgoFiles,TestGoFiles,XTestGoFiles,Export,DepOnly,Error"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v\n%s", strings.Join(patterns, " "), err, stderr.Bytes())
	}
	exports := map[string]string{}
	var roots []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: reading its output: %w", err)
		}
		if l.Error != nil {
			return nil, fmt.Errorf("package %s: %s", l.ImportPath, l.Error.Err)
		}
		exports[l.ImportPath] = l.Export
		if !l.DepOnly {
			roots = append(roots, l)
		}
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f := exports[path]
		if f == "" {
			return nil, fmt.Errorf("no export data for %q (go list did not build it)", path)
		}
		return os.Open(f)
	})
	var pkgs []*pkg
	for _, l := range roots {
		if len(l.CgoFiles) > 0 {
			return nil, fmt.Errorf("package %s uses cgo, which this checker does not type-check", l.ImportPath)
		}
		p, err := check(fset, imp, l)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// check parses and type-checks one package.
func check(fset *token.FileSet, imp types.Importer, l listed) (*pkg, error) {
	parse := func(names []string) ([]*ast.File, error) {
		var files []*ast.File
		for _, n := range names {
			f, err := parser.ParseFile(fset, filepath.Join(l.Dir, n), nil, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		return files, nil
	}
	files, err := parse(l.GoFiles)
	if err != nil {
		return nil, err
	}
	tests, err := parse(append(append([]string(nil), l.TestGoFiles...), l.XTestGoFiles...))
	if err != nil {
		return nil, err
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	var errs []error
	conf := types.Config{Importer: imp, Error: func(err error) { errs = append(errs, err) }}
	tp, _ := conf.Check(l.ImportPath, fset, files, info)
	if len(errs) > 0 {
		return nil, fmt.Errorf("type-checking %s: %w", l.ImportPath, errors.Join(errs...))
	}
	return &pkg{path: l.ImportPath, types: tp, info: info, files: files, tests: tests}, nil
}
