package streams

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/partition"
	"github.com/eventlog/eventlog/internal/record"
)

// TestLendingReadsKeepTheirBlocks: lending reads of blocks (compressed
// runs) share pooled buffers between reads, one a block, released when
// the read that split it and the consumer of each of its chunks are done.
// Six goroutines read partitions of their own, whose events say whose they
// are, many times each, through the real read-ahead (openSpanOn over a
// model of the rows), forward and backward, bounded or not, some stopping
// early; every event is checked while its chunk is consumed, before and
// after a yield, so a buffer pooled while a chunk of it is unconsumed
// shows another read's bytes (from a helper's review of the pooled
// buffers; with the consumer's reference left out, it fails).
func TestLendingReadsKeepTheirBlocks(t *testing.T) {
	const (
		readers = 6
		reads   = 60
		events  = 700
		block   = 32
	)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for g := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			d, data := lendModel(g, events, block)
			for range reads {
				if err := lendRead(rng, d, data, events); err != nil {
					errs <- fmt.Errorf("reader %d: %w", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// lendModel is a partition of n 1-event chunks of reader g, each event's
// data naming g and its version, every complete block of size versions
// compacted into a block row: the rest stay a row each.
func lendModel(g, n int, size int64) (*modelRows, map[int64]string) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &modelRows{byKey: map[int64]modelRow{}}
	data := map[int64]string{}
	for v := int64(1); v <= int64(n); v++ {
		data[v] = fmt.Sprintf(`{"reader":%d,"v":%d,"pad":"%s"}`, g, v, strings.Repeat(string(rune('a'+g)), 64))
		c := record.Chunk{FirstVersion: v, Appends: []record.ChunkAppend{{Events: []record.Event{{Type: "t", Data: []byte(data[v])}}}}}
		d.put(rowOf([]modelPart{{v, v, t0.Add(time.Duration(v) * time.Millisecond), record.AppendChunkBody(nil, &c)}}))
	}
	d.compact(size, math.MaxInt64)
	return d, data
}

// lendRead reads a random range of d lending its memory and checks each
// event against data while its chunk is consumed.
func lendRead(rng *rand.Rand, d *modelRows, data map[int64]string, n int) error {
	from := 1 + rng.Int64N(int64(n))
	var to int64
	if rng.IntN(2) == 0 {
		to = from + rng.Int64N(int64(n)-from+1)
	}
	backward := rng.IntN(4) == 0
	stopAt := int64(math.MaxInt64)
	if rng.IntN(3) == 0 {
		stopAt = from + rng.Int64N(int64(n)) // forward: stops there; backward: never
	}
	_, cancel := context.WithCancel(context.Background())
	sp := partition.Span{From: from, To: to}
	r := openSpanOn(d, cancel, "lend", 1+rng.IntN(64), sp, to != 0, backward, true, 0, nil)
	defer r.close()
	check := func(c *Chunk) error {
		v := c.FirstVersion
		for _, a := range c.Appends {
			for _, e := range a.Events {
				if got := string(e.Data); got != data[v] {
					return fmt.Errorf("version %d: data %.40s…, want %.40s…", v, got, data[v])
				}
				v++
			}
		}
		return nil
	}
	var stop = fmt.Errorf("stop")
	err := r.each(func(c *Chunk) error {
		if err := check(c); err != nil {
			return err
		}
		runtime.Gosched()
		if err := check(c); err != nil {
			return fmt.Errorf("after a yield: %w", err)
		}
		if !backward && c.LastVersion >= stopAt {
			return stop
		}
		return nil
	})
	if err == stop {
		return nil
	}
	return err
}

// TestEarlyStopGivesBackLentMemory: a lending read whose consumer stops
// early (an HTTP page at its limit, a replay whose client left) gives back
// to their pools the chunk and block buffers of what it read ahead and
// nobody took: left to the GC, each was a fresh allocation for the reads
// after it (before, every such read here left some of both behind).
func TestEarlyStopGivesBackLentMemory(t *testing.T) {
	var bufs, blocks atomic.Int64
	lendHook = func(b, k int) { bufs.Add(int64(b)); blocks.Add(int64(k)) }
	defer func() { lendHook = nil }()
	const events = 700
	d, _ := lendModel(0, events, 32)
	stop := fmt.Errorf("stop")
	for _, c := range []struct {
		from, to int64
		backward bool
		after    int // chunks taken before the consumer stops
	}{
		{1, 0, false, 1}, {1, 0, false, 40}, {100, 600, false, 3}, {300, 0, false, 0},
		{1, events, true, 1}, {1, 650, true, 40}, {1, 0, true, 0},
	} {
		_, cancel := context.WithCancel(context.Background())
		r := openSpanOn(d, cancel, "lend", 16, partition.Span{From: c.from, To: c.to}, c.to != 0, c.backward, true, 0, nil)
		n := 0
		err := r.each(func(*Chunk) error {
			if n++; n > c.after {
				return stop
			}
			return nil
		})
		r.close()
		if err != stop {
			t.Fatalf("%+v: %v", c, err)
		}
		if b, k := bufs.Load(), blocks.Load(); b != 0 || k != 0 {
			t.Errorf("%+v: %d chunk buffers and %d block buffers not given back", c, b, k)
		}
		bufs.Store(0)
		blocks.Store(0)
	}
}
