package parts

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// maxFuncLines is the longest a function of the stream loops may be, from
// its func line to its closing brace.
const maxFuncLines = 60

// The master's dispatcher and the worker's session loop stay made of
// short functions: a loop with many cases becomes a type with a method per
// case.
func TestStreamLoopsHaveShortFunctions(t *testing.T) {
	for _, file := range []string{"dispatcher.go", "../worker/dispatch.go"} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		funcs := 0
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			funcs++
			from, to := fset.Position(fd.Pos()).Line, fset.Position(fd.End()).Line
			if n := to - from + 1; n > maxFuncLines {
				t.Errorf("%s:%d: %s is %d lines; at most %d", file, from, funcName(fd), n, maxFuncLines)
			}
		}
		if funcs < 10 {
			t.Errorf("%s: %d functions found; is it the file meant?", file, funcs)
		}
	}
}

// funcName is fd's name, with its receiver's type for a method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
