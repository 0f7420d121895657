package groups

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGroupRowsWrittenOnlyConditionally: every statement of this package
// that writes a group's rows (shard_groups, shard_group_members,
// shard_group_leases) is a conditional write. Its cells then carry a
// Paxos ballot's timestamp, Cassandra's clock: a plain write carries the
// instance's, and an instance ahead by an hour left cells that a later
// delete or creation from another instance could not replace for the
// hour, one behind wrote deletes that removed nothing
// (shardstore's TestGroupMemberLeavesAfterAHeartbeatFromAnInstanceAhead
// and TestGroupDeleteFromALaggingInstance show the rows' behaviour).
func TestGroupRowsWrittenOnlyConditionally(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			stmt, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			verb, _, _ := strings.Cut(stmt, " ")
			if verb != "INSERT" && verb != "UPDATE" && verb != "DELETE" || !strings.Contains(stmt, "shard_group") {
				return true
			}
			writes++
			if !strings.Contains(stmt, " IF ") {
				t.Errorf("%s: a plain write of a group's rows: %s", name, stmt)
			}
			return true
		})
	}
	if writes < 8 {
		t.Fatalf("found %d statements writing group rows, want the package's 8 or more", writes)
	}
}
