package feeds

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// Reader.Pages without Cassandra, for the pooled memory's lifetimes. Each
// shard's fetch decodes its rows as ahead's readRange does (decodeRow with
// scratch: the record handed in is one buffer, overwritten after every
// row) or as query does (a fresh record per row), and sends batches of
// random sizes to the merge; the pool poisons what it takes back. Every
// page, copied, must match a read without a pool, and the page before the
// last must be unchanged by the last Next (log.FeedPages' contract).
// Records are plain, S2, zstd and large incompressible ones.

type synthRow struct {
	seq int64
	t   time.Time
	rec []byte
}

func synthLogs(rng *rand.Rand, shards, rows int) [][]synthRow {
	logs := make([][]synthRow, shards)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows * shards {
		s := rng.IntN(shards)
		var r record.Record
		kind := rng.IntN(4)
		nApp := 1 + rng.IntN(3)
		if kind == 1 {
			nApp = 1 + rng.IntN(80) // many appends: compressed
		}
		for a := range nApp {
			app := record.Append{Stream: log.StreamID(fmt.Sprintf("%c-%d", "ab"[rng.IntN(2)], a%5)), FirstVersion: 1 + int64(rng.IntN(100))}
			nEv := 1 + rng.IntN(2)
			if kind == 2 {
				nEv = 1 + rng.IntN(200) // many events: compressed, maybe zstd
			}
			for j := range nEv {
				e := record.Event{ID: uuid.New(), Type: string("XY"[rng.IntN(2)])}
				switch kind {
				case 3: // incompressible: stored plain though large
					e.Data = make([]byte, 100+rng.IntN(900))
					for k := range e.Data {
						e.Data[k] = byte(rng.Uint32())
					}
				default:
					e.Data = fmt.Appendf(nil, `{"row":%d,"a":%d,"j":%d,"pad":"0123456789abcdef0123456789"}`, i, a, j)
				}
				if rng.IntN(3) == 0 {
					e.Metadata = fmt.Appendf(nil, `{"m":%d}`, j)
				}
				app.Events = append(app.Events, e)
			}
			r.Appends = append(r.Appends, app)
		}
		logs[s] = append(logs[s], synthRow{seq: int64(len(logs[s]) + 1), t: base.Add(time.Duration(i) * time.Millisecond), rec: record.AppendRecord(nil, &r)})
	}
	return logs
}

// synthFetch sends shard s's rows to ch as a fetch would.
func synthFetch(ctx context.Context, rng *rand.Rand, s int, rows []synthRow, f filter, pool *bufPool, ch chan<- batch) {
	var scratch []byte
	var out []row
	for i, lr := range rows {
		useScratch := pool != nil && rng.IntN(3) != 0
		in := shardlog.Row{Seq: lr.seq, Time: lr.t}
		if useScratch {
			scratch = append(scratch[:0], lr.rec...)
			in.Record = scratch
		} else {
			in.Record = bytes.Clone(lr.rec)
		}
		rw, err := decodeRow(s, 0, in, 0, f, pool, useScratch)
		if err != nil {
			panic(err)
		}
		if useScratch {
			for k := range scratch {
				scratch[k] = 0xEE // the driver's next row
			}
		}
		out = append(out, rw)
		if last := i == len(rows)-1; last || rng.IntN(4) == 0 {
			b := batch{rows: out}
			if last {
				b.done, b.atEnd, b.endTime = true, true, lr.t
			}
			select {
			case ch <- b:
			case <-ctx.Done():
				return
			}
			out = nil
		}
	}
	if len(rows) == 0 {
		select {
		case ch <- batch{done: true, atEnd: true}:
		case <-ctx.Done():
		}
	}
}

func synthPages(logs [][]synthRow, f filter, pooled bool, seed uint64) *Pages {
	r := &Reader{o: Options{DefaultLimit: 2, MaxLimit: 1 << 20}}
	r.o.EnsureDefaults()
	r.o.ScanRows = 1 << 30
	r.bufs.poison = true
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pages{cancel: cancel, ctx: ctx, g: &fanout.Group{}}
	m := &merge{r: r, shards: len(logs), limit: r.o.MaxLimit, scanRows: r.o.ScanRows, pos: make([]ShardPos, len(logs))}
	for s := range logs {
		ch := make(chan batch)
		m.in = append(m.in, &input{shard: s, ch: ch})
		var pool *bufPool
		if pooled {
			pool = &r.bufs
		}
		rng := rand.New(rand.NewPCG(seed, uint64(s)))
		p.g.Go(func() { synthFetch(ctx, rng, s, logs[s], f, pool, ch) })
	}
	p.m = m
	return p
}

func cloneEvent(e Event) Event {
	e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
	e.Cursor = NewCursor(e.Cursor.Positions())
	return e
}

func eventsEqual(a, b *Event) bool {
	return a.Stream == b.Stream && a.Version == b.Version && a.ID == b.ID && a.Type == b.Type &&
		a.Time.Equal(b.Time) && bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Metadata, b.Metadata) &&
		a.Shard == b.Shard && a.Seq == b.Seq && a.Index == b.Index && a.Cursor.Equal(b.Cursor)
}

// TestPagesPooledMatchUnpooled: pooled pages are the pages of a read
// without a pool, whatever the page sizes and the records' encodings.
func TestPagesPooledMatchUnpooled(t *testing.T) {
	const shards = 3
	logs := synthLogs(rand.New(rand.NewPCG(1, 2)), shards, 150)
	for _, f := range []filter{{kind: log.FeedAll}, {kind: log.FeedCategory, name: "a"}, {kind: log.FeedType, name: "Y"}} {
		ref := synthPages(logs, f, false, 7)
		pg, err := ref.Next(1<<20, 0)
		ref.Close()
		if err != nil || !pg.AtEnd {
			t.Fatalf("reference: %v, at end %v", err, pg.AtEnd)
		}
		want := slices.Clone(pg.Events)
		for i := range want {
			want[i] = cloneEvent(want[i])
		}
		for _, size := range []struct{ limit, maxBytes int }{{1, 0}, {3, 0}, {17, 0}, {64, 0}, {1000, 2500}} {
			for seed := range uint64(3) {
				p := synthPages(logs, f, true, seed)
				var (
					got      []Event
					prev     []Event
					prevFrom int
				)
				for n := 0; ; n++ {
					page, err := p.Next(size.limit, size.maxBytes)
					if err != nil {
						t.Fatal(err)
					}
					for j := range prev {
						if !eventsEqual(&prev[j], &got[prevFrom+j]) {
							t.Fatalf("%v pages %+v seed %d: page %d changed under the next Next: event %d", f, size, seed, n-1, j)
						}
					}
					prev, prevFrom = page.Events, len(got)
					for _, e := range page.Events {
						got = append(got, cloneEvent(e))
					}
					if page.AtEnd {
						break
					}
				}
				p.Close()
				if len(got) != len(want) {
					t.Fatalf("%v pages %+v seed %d: %d events, want %d", f, size, seed, len(got), len(want))
				}
				for i := range got {
					if !eventsEqual(&got[i], &want[i]) {
						t.Fatalf("%v pages %+v seed %d: event %d is %+v, want %+v", f, size, seed, i, got[i], want[i])
					}
				}
			}
		}
	}
}
