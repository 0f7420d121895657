package catalog

import (
	"context"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
)

// schema/migrations/0007_discovery.cql: stream_catalog, stream_categories,
// event_index.
const (
	cqlPutStream   = `INSERT INTO stream_catalog (category, stream, created) VALUES (?, ?, ?)`
	cqlPutCategory = `INSERT INTO stream_categories (id, category, created) VALUES (0, ?, ?)`
	cqlPutID       = `INSERT INTO event_index (shard, minute, id, stream, version) VALUES (?, ?, ?, ?, ?)`
	cqlPutIDTTL    = `INSERT INTO event_index (shard, minute, id, stream, version) VALUES (?, ?, ?, ?, ?) USING TTL ?`
)

// UntimedWindow is how long an event whose id is not a UUIDv7 can be found
// by id: its index row is filed under its commit minute, and a lookup
// scans the minutes of this window (the row expires a little after).
const UntimedWindow = time.Hour

// maxRowsPerBatch bounds one single-partition batch of id rows.
const maxRowsPerBatch = 2000

// knownCategoriesCap bounds the categories an instance remembers having
// written (past it, a new stream of an unremembered category writes its
// category row again: an idempotent overwrite).
const knownCategoriesCap = 100_000

// partitionKey is an event_index partition.
type partitionKey struct {
	shard  int
	minute int64
}

// Minute is the event_index partition minute of an event: the minute of
// the time its UUIDv7 id carries, else of its commit time (timed false).
func Minute(id uuid.UUID, commit time.Time) (minute int64, timed bool) {
	if id.Version() == 7 {
		sec, nsec := id.Time().UnixTime()
		return (sec*1000 + nsec/1e6) / 60_000, true
	}
	return commit.UnixMilli() / 60_000, false
}

// Write writes the index rows of chunks being filled for shard: a catalog
// row for each chunk that holds a stream's version 1, a category row for
// categories this instance has not written yet, and an id row per event,
// grouped in one batch per partition. Idempotent. The writes run in
// parallel; the first error is returned (the filler retries the round).
func (c *Catalog) Write(ctx context.Context, shard int, chunks []streams.Pending) error {
	type idRow struct {
		id      uuid.UUID
		stream  string
		version int64
		timed   bool
	}
	var (
		ids       = map[partitionKey][]idRow{}
		newCats   = map[string]time.Time{}
		catalogue = map[string][]streams.Pending{}
	)
	for i := range chunks {
		p := &chunks[i]
		v := p.Chunk.FirstVersion
		for _, a := range p.Chunk.Appends {
			for _, e := range a.Events {
				m, timed := Minute(e.ID, p.Time)
				k := partitionKey{shard, m}
				ids[k] = append(ids[k], idRow{e.ID, string(p.Chunk.Stream), v, timed})
				v++
			}
		}
		if p.Chunk.FirstVersion == 1 {
			cat := p.Chunk.Stream.Category()
			catalogue[cat] = append(catalogue[cat], *p)
			if !c.knownCategory(cat) {
				if t, ok := newCats[cat]; !ok || p.Time.Before(t) {
					newCats[cat] = p.Time
				}
			}
		}
	}
	var jobs []func() error
	for k, rows := range ids {
		for len(rows) > 0 {
			n := min(len(rows), maxRowsPerBatch)
			part := rows[:n]
			rows = rows[n:]
			jobs = append(jobs, func() error {
				b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
				for _, r := range part {
					if r.timed {
						b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutID, Idempotent: true,
							Args: []any{k.shard, k.minute, [16]byte(r.id), r.stream, r.version}})
					} else {
						b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutIDTTL, Idempotent: true,
							Args: []any{k.shard, k.minute, [16]byte(r.id), r.stream, r.version, c.untimedTTL}})
					}
				}
				return c.exec(b, "index event ids")
			})
		}
	}
	for cat, ps := range catalogue {
		jobs = append(jobs, func() error {
			b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
			for _, p := range ps {
				b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutStream, Idempotent: true,
					Args: []any{cat, string(p.Chunk.Stream), p.Time}})
			}
			return c.exec(b, "catalog streams")
		})
	}
	if len(newCats) > 0 {
		jobs = append(jobs, func() error {
			b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
			for cat, t := range newCats {
				b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: cqlPutCategory, Idempotent: true, Args: []any{cat, t}})
			}
			if err := c.exec(b, "catalog categories"); err != nil {
				return err
			}
			for cat := range newCats {
				c.rememberCategory(cat)
			}
			return nil
		})
	}
	return run(jobs, 8)
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

// run runs jobs, at most n at once, and returns the first error.
func run(jobs []func() error, n int) error {
	if len(jobs) == 1 {
		return jobs[0]()
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
		sem  = make(chan struct{}, n)
	)
	for _, job := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := job(); err != nil {
				mu.Lock()
				if ferr == nil {
					ferr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ferr
}
