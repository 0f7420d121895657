package snapshot

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// mustDecode decodes blob with c and fails the test on error.
func mustDecode(tb testing.TB, c *Codec, dst, blob []byte) []byte {
	tb.Helper()
	out, err := c.Decode(dst, blob)
	if err != nil {
		tb.Fatalf("Decode: %v", err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	c := mustCodec(t, 64<<20)
	for _, tc := range []struct {
		name  string
		state []byte
	}{
		{"Empty", nil},
		{"EmptyNonNil", []byte{}},
		{"OneByte", []byte("x")},
		{"SmallJSON", []byte(`{"id":"a","version":3}`)},
		{"Binary", bytes.Repeat([]byte{0, 0xff, 7}, 1000)},
		{"100KB", aggregateJSON(t, smallLines)},
		{"5MB", aggregateJSON(t, largeLines)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob := c.Encode(nil, tc.state)
			if got, want := Compression, "zstd"; got != want {
				t.Fatalf("Compression = %q, want %q", got, want)
			}
			got := mustDecode(t, c, nil, blob)
			if !bytes.Equal(got, tc.state) {
				t.Fatalf("round trip: got %d bytes, want %d", len(got), len(tc.state))
			}
		})
	}
}

// Encode and Decode append: an existing prefix in dst must survive, whether
// dst has spare capacity or not.
func TestAppend(t *testing.T) {
	c := mustCodec(t, 1<<20)
	state := aggregateJSON(t, 10)
	prefix := []byte("prefix:")

	blob := c.Encode(bytes.Clone(prefix), state)
	if !bytes.HasPrefix(blob, prefix) {
		t.Fatal("Encode lost dst prefix")
	}
	blob = blob[len(prefix):]

	for _, tc := range []struct {
		name string
		dst  []byte
	}{
		{"NoRoom", bytes.Clone(prefix)},
		{"Room", append(make([]byte, 0, len(prefix)+len(state)+100), prefix...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustDecode(t, c, tc.dst, blob)
			if want := append(bytes.Clone(prefix), state...); !bytes.Equal(got, want) {
				t.Fatal("Decode did not append state after prefix")
			}
		})
	}

	t.Run("ErrorKeepsDst", func(t *testing.T) {
		got, err := c.Decode(bytes.Clone(prefix), []byte("junk"))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
		if !bytes.Equal(got, prefix) {
			t.Fatalf("dst = %q, want %q", got, prefix)
		}
	})
}

// Decoding into a reused buffer must keep its capacity so pooled buffers
// do not shrink.
func TestDecodeKeepsCapacity(t *testing.T) {
	c := mustCodec(t, 1<<20)
	blob := c.Encode(nil, aggregateJSON(t, 5))
	buf := make([]byte, 0, 1<<16)
	got := mustDecode(t, c, buf, blob)
	if cap(got) != cap(buf) {
		t.Fatalf("cap = %d, want %d", cap(got), cap(buf))
	}
}

// The product target: compressed size ≤ 1/5 of the JSON for realistic
// aggregate state.
func TestCompressionRatio(t *testing.T) {
	c := mustCodec(t, 64<<20)
	for _, lines := range []int{smallLines, largeLines} {
		state := aggregateJSON(t, lines)
		blob := c.Encode(nil, state)
		t.Logf("%d lines: %d -> %d bytes, ratio %.2f", lines, len(state), len(blob), float64(len(state))/float64(len(blob)))
		if got, limit := len(blob), len(state)/5; got > limit {
			t.Errorf("%d lines: blob is %d bytes, want ≤ %d (1/5 of %d)", lines, got, limit, len(state))
		}
	}
}

func TestNewCodec(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := NewCodec(n); err == nil {
			t.Errorf("NewCodec(%d): want error", n)
		}
	}
	// Limits below zstd's minimum window still work.
	c := mustCodec(t, 10)
	got := mustDecode(t, c, nil, c.Encode(nil, []byte("0123456789")))
	if string(got) != "0123456789" {
		t.Fatalf("got %q", got)
	}
	if _, err := c.Decode(nil, c.Encode(nil, []byte("0123456789A"))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// Run with -race: one codec shared by many goroutines.
func TestConcurrent(t *testing.T) {
	c := mustCodec(t, 1<<20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				state := aggregateJSON(t, 1+g*20+i)
				got, err := c.Decode(nil, c.Encode(nil, state))
				if err != nil || !bytes.Equal(got, state) {
					t.Errorf("goroutine %d, iteration %d: err %v, equal %v", g, i, err, bytes.Equal(got, state))
					return
				}
			}
		})
	}
	wg.Wait()
}
