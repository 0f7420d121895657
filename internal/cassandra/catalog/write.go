package catalog

import (
	"context"
	"slices"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/fanout"
)

// schema/migrations/0002_discovery.cql: stream_catalog, stream_categories;
// 0008_event_id_commits.cql: event_id_commits.
const (
	cqlPutStream   = `INSERT INTO stream_catalog (category, stream, created) VALUES (?, ?, ?)`
	cqlPutCategory = `INSERT INTO stream_categories (id, category, created) VALUES (0, ?, ?)`
	// One statement per partition and commit, not per event or stream:
	// Cassandra's cost of a batch grows with its statements. The ids are
	// filed at the log row of their commit (seq, in the key: a row per id
	// and commit), with the commit's time; EventByID reads the log row to
	// find the stream and version. Servers before 0008 wrote event_index,
	// one row per id and partition, which a later commit of the id
	// overwrote.
	cqlPutIDs    = `UPDATE event_id_commits SET time = ? WHERE shard = ? AND minute = ? AND slot = ? AND id IN ? AND seq = ?`
	cqlPutIDsTTL = `UPDATE event_id_commits USING TTL ? SET time = ? WHERE shard = ? AND minute = ? AND slot = ? AND id IN ? AND seq = ?`
)

// idsPerStatement bounds the ids of one cqlPutIDs statement (the
// clustering keys it builds).
const idsPerStatement = 500

// UntimedWindow is how long an event whose id is not a UUIDv7 can be found
// by id: its index row is filed under the minute of its fill by
// Cassandra's clock (Options.Clock), and a lookup scans the minutes of
// this window (the row expires a little after).
const UntimedWindow = time.Hour

// Slots is how many partitions share a (shard, minute) of UUIDv7 ids:
// each fill request picks one at random, so the concurrent fills of a
// shard do not contend for one partition (measured: a single hot partition
// made each index mutation about three times as slow as a chunk write). A
// lookup reads every slot.
const Slots = 8

// maxRowsPerBatch bounds one single-partition batch of id rows.
const maxRowsPerBatch = 2000

// knownCategoriesCap bounds the categories an instance remembers having
// written (past it, a new stream of an unremembered category writes its
// category row again: an idempotent overwrite).
const knownCategoriesCap = 100_000

// Minute is the id index's partition minute of an event (event_id_commits,
// event_index): the minute of the time its UUIDv7 id carries, else of at
// (timed false), the time it is filed at.
func Minute(id uuid.UUID, at time.Time) (minute int64, timed bool) {
	if id.Version() == 7 {
		sec, nsec := id.Time().UnixTime()
		return (sec*1000 + nsec/1e6) / 60_000, true
	}
	return at.UnixMilli() / 60_000, false
}

// Rows returns the index rows of chunks being filled for shard, grouped
// by partition: a catalog row for each chunk that holds a stream's
// version 1 (by category), a category row for the categories this
// instance has not written yet, and an id row per event (by shard and
// minute, at most maxRowsPerBatch to a group). The first groups, up to
// room partitions, are piggy: the filler sends them in the request that
// writes the chunks (streams.WritePack), so the indexes usually cost no
// request of their own; the others are rest, each a batch for Exec. done
// is to be called once all are written (it remembers the categories).
func (c *Catalog) Rows(shard int, chunks []streams.Pending, room int) (piggy []gocql.BatchEntry, rest [][]gocql.BatchEntry, done func()) {
	// No deadline of its own: Cassandra's clock is read in the background
	// (dbclock), its first reading within a bound of its own.
	groups, cats := c.groups(context.Background(), shard, chunks)
	for i, g := range groups {
		if i < room {
			piggy = append(piggy, g...)
		} else {
			rest = append(rest, g)
		}
	}
	return piggy, rest, func() {
		for _, cat := range cats {
			c.rememberCategory(cat)
		}
	}
}

// groups builds the index rows of chunks, one group per partition, the
// largest id group first; cats are the categories it writes rows for.
func (c *Catalog) groups(ctx context.Context, shard int, chunks []streams.Pending) (groups [][]gocql.BatchEntry, cats []string) {
	// idRows is one partition's id statements, with the ids they hold.
	type idRows struct {
		entries []gocql.BatchEntry
		counts  []int
		total   int
	}
	// The ids by partition (minute, or untimed minute -1-m) and commit.
	type idKey struct{ key, seq int64 }
	var (
		ids       = map[int64]*idRows{}
		minutes   []int64
		byKey     = map[idKey][][16]byte{}
		keys      []idKey
		committed = map[int64]time.Time{} // by seq: a commit's chunks share its time
		newCats   = map[string]time.Time{}
		catalogue = map[string][]gocql.BatchEntry{}
		catOrder  []string
	)
	slot := c.slot()
	var filed time.Time // Cassandra's clock, read for the first untimed id
	for i := range chunks {
		p := &chunks[i]
		committed[p.Seq] = p.Time
		for b := p.EventIDs; len(b) >= 16; b = b[16:] {
			id := uuid.UUID(b[:16])
			at := p.Time
			if c.o.Clock != nil && id.Version() != 7 {
				if filed.IsZero() {
					filed = c.o.Clock(ctx)
				}
				at = filed
			}
			m, timed := Minute(id, at)
			k := idKey{key: m, seq: p.Seq}
			if !timed {
				k.key = -1 - m // slot 0, a group apart from the timed rows of that minute
			}
			if byKey[k] == nil {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], id)
		}
		if p.FirstVersion == 1 {
			cat := p.Stream.Category()
			if catalogue[cat] == nil {
				catOrder = append(catOrder, cat)
			}
			catalogue[cat] = append(catalogue[cat], gocql.BatchEntry{Stmt: cqlPutStream, Idempotent: true,
				Args: []any{cat, string(p.Stream), p.Time}})
			if !c.knownCategory(cat) {
				if t, ok := newCats[cat]; !ok || p.Time.Before(t) {
					newCats[cat] = p.Time
				}
			}
		}
	}
	for _, k := range keys {
		g := ids[k.key]
		if g == nil {
			g = &idRows{}
			ids[k.key] = g
			minutes = append(minutes, k.key)
		}
		for list := byKey[k]; len(list) > 0; {
			n := min(len(list), idsPerStatement)
			e := gocql.BatchEntry{Stmt: cqlPutIDs, Idempotent: true, Args: []any{committed[k.seq], shard, k.key, slot, list[:n], k.seq}}
			if k.key < 0 {
				e = gocql.BatchEntry{Stmt: cqlPutIDsTTL, Idempotent: true, Args: []any{c.untimedTTL, committed[k.seq], shard, -1 - k.key, 0, list[:n], k.seq}}
			}
			g.entries, g.counts, g.total = append(g.entries, e), append(g.counts, n), g.total+n
			list = list[n:]
		}
	}
	slices.SortStableFunc(minutes, func(a, b int64) int { return ids[b].total - ids[a].total })
	for _, m := range minutes {
		g := ids[m]
		// Up to maxRowsPerBatch ids a group (a statement is never split).
		start, rows := 0, 0
		for i, n := range g.counts {
			if rows > 0 && rows+n > maxRowsPerBatch {
				groups = append(groups, g.entries[start:i])
				start, rows = i, 0
			}
			rows += n
		}
		groups = append(groups, g.entries[start:])
	}
	for _, cat := range catOrder {
		groups = append(groups, catalogue[cat])
	}
	if len(newCats) > 0 {
		var g []gocql.BatchEntry
		for cat, t := range newCats {
			g = append(g, gocql.BatchEntry{Stmt: cqlPutCategory, Idempotent: true, Args: []any{cat, t}})
			cats = append(cats, cat)
		}
		groups = append(groups, g)
	}
	return groups, cats
}

// Exec writes one group of rows (of Rows' rest).
func (c *Catalog) Exec(ctx context.Context, rows []gocql.BatchEntry) error {
	b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	b.Entries = rows
	return c.exec(b, "write discovery index")
}

// Write writes the index rows of chunks (a catch-up's), each partition's
// in a batch of its own, in parallel. Idempotent.
func (c *Catalog) Write(ctx context.Context, shard int, chunks []streams.Pending) error {
	groups, cats := c.groups(ctx, shard, chunks)
	jobs := make([]func(context.Context) error, len(groups))
	for i, g := range groups {
		jobs[i] = func(ctx context.Context) error { return c.Exec(ctx, g) }
	}
	if len(jobs) == 0 {
		return nil
	}
	if err := run(ctx, jobs, 8); err != nil {
		return err
	}
	for _, cat := range cats {
		c.rememberCategory(cat)
	}
	return nil
}

// exec sends b, as a plain statement when it holds one entry.
func (c *Catalog) exec(b *gocql.Batch, what string) error {
	var err error
	if len(b.Entries) == 1 {
		e := b.Entries[0]
		err = c.session.Query(e.Stmt, e.Args...).WithContext(b.Context()).Idempotent(true).Exec()
	} else {
		err = b.Exec()
	}
	return cql.ReadErr(what, err)
}

func (c *Catalog) knownCategory(cat string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.categories[cat]
}

func (c *Catalog) rememberCategory(cat string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.categories) < knownCategoriesCap {
		c.categories[cat] = true
	}
}

// run runs jobs, at most n at once, and returns the first error. After
// it, the jobs not started are not started, and the running ones' ctx is
// cancelled: the answer is decided, their work would be wasted. A job's
// panic stops the jobs alike and is raised again in the caller's
// goroutine once the others have ended (fanout.Group), as a single job's
// is (run calls it itself): in a goroutine of run's no recover of the
// caller's (the HTTP layer's, answering 500) could reach it, and it ended
// the process.
func run(ctx context.Context, jobs []func(context.Context) error, n int) error {
	if len(jobs) == 1 {
		return jobs[0](ctx)
	}
	caller := ctx
	g, ctx := fanout.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		ferr error
		sem  = make(chan struct{}, n)
	)
	for _, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // a job failed (its cancel comes before its slot is freed), or ctx is done
		}
		g.Go(func() {
			defer func() { <-sem }()
			if err := job(ctx); err != nil {
				mu.Lock()
				if ferr == nil {
					ferr = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	g.Wait()
	if ferr == nil {
		ferr = caller.Err() // the caller's ctx ended before every job ran (Wait ends ctx)
	}
	return ferr
}
