package main

import (
	"fmt"
	"go/token"
	"os"
)

func main() {
	patterns := os.Args[1:]
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	if patterns[0] == "-h" || patterns[0] == "--help" {
		fmt.Println("usage: pkgstate [packages]   (default ./...; see doc.go for the rule)")
		return
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgstate:", err)
		os.Exit(2)
	}
	fset := token.NewFileSet()
	pkgs, err := load(fset, wd, patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkgstate:", err)
		os.Exit(2)
	}
	vs := run(fset, pkgs, wd)
	for _, v := range vs {
		fmt.Println(v)
	}
	if len(vs) > 0 {
		fmt.Fprintf(os.Stderr, "pkgstate: %d package-level variables are mutable state (internal/pkgstate/doc.go says what is allowed)\n", len(vs))
		os.Exit(1)
	}
}
