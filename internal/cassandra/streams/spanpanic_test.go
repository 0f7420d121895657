package streams

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/partition"
)

// panicRows is a spanRows whose queries panic.
type panicRows struct{ spanRows }

func (panicRows) rows(int64, int64, bool, int) rowIter { panic("row read bug") }

// TestSpanPanicIsTheConsumers: a panic on a span's read-ahead goroutine
// is raised on its consumer's, with that goroutine's stack: at the end of
// the chunks it sent (each), or when the consumer stops early (close). It
// ended the process; and its deferred close of ahead would have shown the
// consumer a span complete at the chunks sent so far.
func TestSpanPanicIsTheConsumers(t *testing.T) {
	check := func(t *testing.T, f func()) {
		t.Helper()
		var got any
		func() {
			defer func() { got = recover() }()
			f()
		}()
		p, ok := got.(*fanout.Panic)
		if !ok || p.Value != "row read bug" || !strings.Contains(string(p.Stack), "streams.panicRows.rows(") {
			t.Fatalf("raised %v; want the read's panic with its stack", got)
		}
	}
	open := func() *spanRead {
		d, _ := lendModel(0, 10, math.MaxInt64)
		_, cancel := context.WithCancel(context.Background())
		return openSpanOn(panicRows{d}, cancel, "panic", 16, partition.Span{From: 1}, false, false, false, 0, nil)
	}
	t.Run("Each", func(t *testing.T) {
		r := open()
		defer r.close() // raised once: close does not raise it again
		check(t, func() { _ = r.each(func(*Chunk) error { return nil }) })
	})
	t.Run("Close", func(t *testing.T) {
		r := open()
		check(t, r.close)
	})
}
