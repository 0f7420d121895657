package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// codeDirs hold the problem codes the API answers with: this package's own
// (problem.go), the core's (internal/log: errors.go, groups.go) and the
// API keys' (internal/auth).
var codeDirs = []string{".", "../log", "../auth"}

// TestREADMEErrorCodes keeps the README's error table ("### Errors") in
// step with the code: every Code… string constant of codeDirs is in the
// table's first column, and the table names no code that does not exist.
// The package doc (doc.go) must name every code as well.
func TestREADMEErrorCodes(t *testing.T) {
	code := sourceCodes(t)
	if len(code) < 30 {
		t.Fatalf("found only %d Code… constants in %q: the parse is broken", len(code), codeDirs)
	}
	readme := readmeCodes(t, "../../README.md")
	for c, where := range code {
		if !readme[c] {
			t.Errorf("%s (%s) is missing from the README's error table", c, where)
		}
	}
	for _, c := range slices.Sorted(maps.Keys(readme)) {
		if _, ok := code[c]; !ok {
			t.Errorf("the README's error table lists %s, which no Code… constant defines", c)
		}
	}
	// The package doc's list of statuses and codes names each code too.
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for c, where := range code {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(c) + `\b`).Match(doc) {
			t.Errorf("%s (%s) is missing from the package doc's list (doc.go)", c, where)
		}
	}
}

// sourceCodes returns the values of the Code… string constants declared in
// the non-test files of codeDirs, each with where it is declared.
func sourceCodes(tb testing.TB) map[string]string {
	tb.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	for _, dir := range codeDirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, dir+"/"+name, nil, parser.SkipObjectResolution)
			if err != nil {
				tb.Fatal(err)
			}
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, id := range vs.Names {
						if !strings.HasPrefix(id.Name, "Code") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							tb.Fatal(err)
						}
						codes[v] = id.Name + " in " + fset.Position(id.Pos()).Filename
					}
				}
			}
		}
	}
	return codes
}

// readmeCodes returns the codes in the first column of the table under the
// README's "### Errors" heading (a cell may name several: `a`, `b`).
func readmeCodes(tb testing.TB, path string) map[string]bool {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Errors\n")
	if !ok {
		tb.Fatalf("%s: no ### Errors section", path)
	}
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	quoted := regexp.MustCompile("`([a-z_]+)`")
	codes := map[string]bool{}
	for line := range strings.Lines(section) {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 3 {
			continue
		}
		for _, m := range quoted.FindAllStringSubmatch(cells[1], -1) {
			if codes[m[1]] {
				tb.Errorf("the README's error table lists %s twice", m[1])
			}
			codes[m[1]] = true
		}
	}
	if len(codes) == 0 {
		tb.Fatalf("%s: no codes in the ### Errors table", path)
	}
	return codes
}
