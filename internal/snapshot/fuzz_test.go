package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimit keeps each fuzz input's decoded size, and so its memory, small.
const fuzzLimit = 1 << 20

// addSeeds adds encoded blobs (golden files and fresh encodings) and their
// truncations, so the fuzzer starts from valid structure.
func addSeeds(f *testing.F, c *Codec) {
	for _, g := range goldens {
		if blob, err := os.ReadFile(filepath.Join("testdata", g.name+".snap")); err == nil {
			f.Add(blob)
		}
	}
	for _, state := range [][]byte{nil, []byte("x"), []byte(`{"id":"a","version":3}`), aggregateJSON(f, 2)} {
		blob := c.Encode(nil, state)
		f.Add(blob)
		f.Add(blob[:len(blob)/2])
	}
	f.Add([]byte{})
	f.Add(craftBlob(1<<40, 1<<40))
}

// FuzzDecode feeds arbitrary blobs to Decode: it must not panic, must return
// only our errors, and anything it accepts must be a state within the limit
// that survives a re-encode.
func FuzzDecode(f *testing.F) {
	c := mustCodec(f, fuzzLimit)
	addSeeds(f, c)
	f.Fuzz(func(t *testing.T, blob []byte) {
		got, err := c.Decode(nil, blob)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(got) > fuzzLimit {
			t.Fatalf("decoded %d bytes past limit %d", len(got), fuzzLimit)
		}
		again, err := c.Decode(nil, c.Encode(nil, got))
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encode round trip: err %v, equal %v", err, bytes.Equal(again, got))
		}
	})
}

// FuzzRoundTrip checks that any state, appended after any prefix, comes back.
func FuzzRoundTrip(f *testing.F) {
	c := mustCodec(f, fuzzLimit)
	f.Add([]byte(nil), []byte(nil))
	f.Add([]byte("p"), []byte(`{"id":"a","version":3}`))
	f.Add([]byte{}, aggregateJSON(f, 3))
	f.Add([]byte("prefix"), bytes.Repeat([]byte{0}, 5000))
	f.Fuzz(func(t *testing.T, prefix, state []byte) {
		blob := c.Encode(bytes.Clone(prefix), state)
		if !bytes.HasPrefix(blob, prefix) {
			t.Fatal("Encode lost dst prefix")
		}
		got, err := c.Decode(bytes.Clone(prefix), blob[len(prefix):])
		if len(state) > fuzzLimit {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d-byte state: err = %v, want ErrTooLarge", len(state), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], state) {
			t.Fatal("round trip changed the state")
		}
	})
}
