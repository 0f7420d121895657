package cassandra

import (
	"context"
	"errors"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

const (
	// schema/schema.cql: stream_buckets (clustered bucket DESC).
	cqlHeadBucket = `SELECT bucket, first_version FROM stream_buckets WHERE stream = ? LIMIT 1`
	// schema/schema.cql: events, static columns only.
	cqlBucketHead = `SELECT first_version, last_version, last_time, opened_at, sealed, fence FROM events WHERE stream = ? AND bucket = ? LIMIT 1`
)

// head is a stream's newest bucket plus whether its index row is known to
// exist (a new stream's bucket 0 is indexed before its first append).
// fence is the bucket's fence (0: none yet); appends condition on it.
type head struct {
	partition.Head
	indexed bool
	fence   int64
}

// loadHead reads a stream's head from Cassandra. With serial set, the bucket
// read is a LOCAL_SERIAL read, which first completes any Paxos round in
// flight on the partition, so it sees every acknowledged append.
func (s *Store) loadHead(ctx context.Context, stream log.StreamID, serial bool) (head, error) {
	var b, first int64
	err := s.session.Query(cqlHeadBucket, string(stream)).WithContext(ctx).Idempotent(true).Scan(&b, &first)
	if errors.Is(err, gocql.ErrNotFound) {
		return head{Head: partition.Head{Bucket: 0, FirstVersion: 1}}, nil
	}
	if err != nil {
		return head{}, readErr("read bucket index", err)
	}
	h, fence, ok, err := s.readBucketHead(ctx, stream, b, serial)
	if err != nil {
		return head{}, err
	}
	if ok {
		return head{Head: h, indexed: true, fence: fence}, nil
	}
	// Indexed but not yet written: the previous bucket is sealed at
	// first-1 (buckets are indexed only after their predecessor seals).
	h = partition.Head{Bucket: b, FirstVersion: first, LastVersion: first - 1}
	if b > 0 {
		prev, _, ok, err := s.readBucketHead(ctx, stream, b-1, serial)
		if err != nil {
			return head{}, err
		}
		if ok {
			h.LastTime = prev.LastTime
		}
	}
	return head{Head: h, indexed: true, fence: fence}, nil
}

// readBucketHead reads a bucket's static head; ok is false when the bucket
// has no events. The fence is returned either way: a repairer may have
// fenced a bucket no append has opened yet.
func (s *Store) readBucketHead(ctx context.Context, stream log.StreamID, bucket int64, serial bool) (partition.Head, int64, bool, error) {
	q := s.session.Query(cqlBucketHead, string(stream), bucket).WithContext(ctx).Idempotent(true)
	if serial {
		q = q.Consistency(s.serial)
	}
	var (
		first, last      *int64
		lastTime, opened time.Time
		sealed           *bool
		fence            *int64
	)
	err := q.Scan(&first, &last, &lastTime, &opened, &sealed, &fence)
	if errors.Is(err, gocql.ErrNotFound) {
		return partition.Head{}, 0, false, nil
	}
	if err != nil {
		return partition.Head{}, 0, false, readErr("read bucket head", err)
	}
	var f int64
	if fence != nil {
		f = *fence
	}
	if last == nil {
		return partition.Head{}, f, false, nil
	}
	h := partition.Head{Bucket: bucket, LastVersion: *last, Created: true, OpenedAt: opened, LastTime: lastTime}
	if first != nil {
		h.FirstVersion = *first
	}
	if sealed != nil {
		h.Sealed = *sealed
	}
	return h, f, true, nil
}

// headCache remembers each stream's head after this instance's appends so
// the next append needs no read. It is only a hint: a stale head fails its
// condition and is reloaded. Bounded by dropping everything when full.
type headCache struct {
	mu  sync.Mutex
	m   map[log.StreamID]head
	max int
}

func newHeadCache(max int) *headCache {
	return &headCache{m: make(map[log.StreamID]head), max: max}
}

func (c *headCache) get(s log.StreamID) (head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[s]
	return h, ok
}

func (c *headCache) put(s log.StreamID, h head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[s] = h
}

func (c *headCache) forget(s log.StreamID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, s)
}
