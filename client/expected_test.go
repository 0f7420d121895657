package client_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/client"
)

func TestExpectedVersionJSON(t *testing.T) {
	var zero client.ExpectedVersion
	if zero != client.Any {
		t.Fatal("the zero ExpectedVersion is not Any")
	}
	if client.Exact(0) != client.NoStream {
		t.Fatal("Exact(0) is not NoStream")
	}
	for _, tc := range []struct {
		e    client.ExpectedVersion
		json string
	}{
		{client.Any, `"any"`},
		{client.NoStream, `"no_stream"`},
		{client.Exists, `"exists"`},
		{client.Exact(7), `7`},
	} {
		b, err := json.Marshal(tc.e)
		if err != nil || string(b) != tc.json {
			t.Fatalf("%s: %s %v, want %s", tc.e, b, err, tc.json)
		}
		var back client.ExpectedVersion
		if err := json.Unmarshal(b, &back); err != nil || back != tc.e {
			t.Fatalf("%s: read back %s, %v", tc.json, back, err)
		}
	}
	if n, ok := client.Exact(7).Version(); !ok || n != 7 {
		t.Fatalf("Exact(7).Version() = %d, %v", n, ok)
	}
	if _, ok := client.Exists.Version(); ok {
		t.Fatal("Exists has a version")
	}
	if _, err := json.Marshal(client.Exact(-1)); err == nil {
		t.Fatal("Exact(-1) encodes")
	}
	for _, bad := range []string{`"none"`, `-1`, `1.5`, `{}`} {
		var e client.ExpectedVersion
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Fatalf("%s decodes", bad)
		}
	}
}

// TestNoInternalImports keeps the package importable by other modules:
// its non-test files import nothing under internal/.
func TestNoInternalImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/eventlog/eventlog/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
