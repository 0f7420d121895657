package snapshot

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// goldens are fixed inputs whose encoded blobs live in testdata/. Blobs written
// by today's code must decode forever, so a failure here means the format
// changed: bump formatVersion and keep decoding version 1 instead of
// regenerating. Run with -update only to add a golden case.
var goldens = []struct {
	name  string
	state func(testing.TB) []byte
}{
	{"empty", func(testing.TB) []byte { return nil }},
	{"aggregate", func(tb testing.TB) []byte { return aggregateJSON(tb, 20) }},
}

func TestGolden(t *testing.T) {
	c := mustCodec(t, 1<<20)
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			jsonPath := filepath.Join("testdata", g.name+".json")
			snapPath := filepath.Join("testdata", g.name+".snap")
			if *update {
				state := g.state(t)
				if err := os.WriteFile(jsonPath, state, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(snapPath, c.Encode(nil, state), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := os.ReadFile(snapPath)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustDecode(t, c, nil, blob); !bytes.Equal(got, want) {
				t.Fatalf("golden %s decodes to %d bytes, want %d", snapPath, len(got), len(want))
			}
			// Encoder output may legitimately change with the zstd version;
			// only decoding is the stable contract.
			if enc := c.Encode(nil, want); !bytes.Equal(enc, blob) {
				t.Logf("note: encoder output differs from %s (%d vs %d bytes)", snapPath, len(enc), len(blob))
			}
		})
	}
}
