package clienttest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clientDir is the client module's directory, from this package's.
const clientDir = "../../client"

// allowedModules are the only modules the client may depend on besides
// itself and the standard library.
var allowedModules = []string{"github.com/google/uuid"}

// serverDeps are modules of the server, the benchmark, the console and the
// CLI: any one of them among the client's dependencies is named as such.
var serverDeps = []string{
	"github.com/apache/cassandra-gocql-driver", // Cassandra
	"github.com/labstack/echo",                 // the HTTP layer
	"github.com/prometheus/",                   // metrics
	"go.opentelemetry.io/",                     // tracing
	"github.com/chromedp/",                     // the console's browser tests
	"github.com/HdrHistogram/",                 // the benchmark
	"gonum.org/",                               // the benchmark's plots
	"github.com/spf13/cobra",                   // the CLI
	"github.com/getkin/kin-openapi",            // the OpenAPI checks
	"github.com/klauspost/compress",            // the server's zstd
}

// TestClientDependencies proves that importing the client does not pull
// the server's dependencies: the client module's graph (go mod graph), the
// packages its code and tests build from (go list -deps -test), and those
// of a program in another module that imports it (testdata/importer,
// built too) hold nothing but the client, github.com/google/uuid and the
// standard library. It needs no Cassandra.
func TestClientDependencies(t *testing.T) {
	t.Run("ModuleGraph", func(t *testing.T) {
		for _, dir := range []string{clientDir, "testdata/importer"} {
			// Each line is "module@version dependency@version".
			for _, f := range strings.Fields(goCmd(t, dir, "mod", "graph")) {
				mod, _, _ := strings.Cut(f, "@")
				checkDep(t, dir, mod)
			}
		}
	})
	t.Run("Packages", func(t *testing.T) {
		// A test variant is listed as "path [path.test]".
		pkgs := lines(goCmd(t, clientDir, "list", "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./..."))
		if !slices.Contains(pkgs, "github.com/google/uuid") {
			t.Errorf("go list -deps in %s: no github.com/google/uuid among %q: the check lists nothing", clientDir, pkgs)
		}
		for _, p := range pkgs {
			checkDep(t, clientDir, strings.Fields(p)[0])
		}
	})
	t.Run("Importer", func(t *testing.T) {
		goCmd(t, "testdata/importer", "build", "-o", os.DevNull, ".")
		for _, p := range lines(goCmd(t, "testdata/importer", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")) {
			checkDep(t, "testdata/importer", p)
		}
	})
}

// checkDep fails the test when path (a module or package path met in dir)
// is neither the importer, the client, an allowed module nor "go" and
// "toolchain" of a module graph.
func checkDep(tb testing.TB, dir, path string) {
	tb.Helper()
	switch {
	case path == "go" || path == "toolchain" || path == "example.com/importer",
		path == "github.com/eventlog/eventlog/client" || strings.HasPrefix(path, "github.com/eventlog/eventlog/client/"),
		strings.HasPrefix(path, "github.com/eventlog/eventlog/client_test"), // the external test package
		path == "github.com/eventlog/eventlog/client.test":
		return
	}
	for _, m := range allowedModules {
		if path == m || strings.HasPrefix(path, m+"/") {
			return
		}
	}
	for _, s := range serverDeps {
		if strings.HasPrefix(path, s) {
			tb.Errorf("%s depends on %s, a dependency of the server", dir, path)
			return
		}
	}
	tb.Errorf("%s depends on %s: not the standard library nor one of %q", dir, path, allowedModules)
}

// goCmd runs the go command in dir, outside any workspace and without
// changing go.mod or go.sum, and returns its standard output.
func goCmd(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("the go command: %v", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.Bytes())
	}
	return string(out)
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var ls []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}
