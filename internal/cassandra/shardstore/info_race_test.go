package shardstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// TestInfoWhileABucketOpens: the fill of a commit that opens a stream's
// next bucket writes the bucket's index row, then, in a request of its
// own, its first chunk. An Info read in between found the newest bucket
// empty: the version (the one before the bucket) was right, but the time
// of the last update was that of no chunk, the zero time.
func TestInfoWhileABucketOpens(t *testing.T) {
	o := newKeyspace(t, 1)
	s := open(t, shardstore.Options{Cassandra: o})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := appendN(ctx, s, "ib-1", log.NoStream, 2)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, s, "ib-1")
	// The index row of bucket 1, as the fill of an append committed now
	// writes it before the bucket's first chunk.
	session := cassandratest.Session(t, o)
	if err := session.Query(`INSERT INTO stream_buckets (stream, bucket, first_version, opened_at) VALUES (?, 1, 3, ?)`, "ib-1", time.Now()).Exec(); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, "ib-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 2 || !info.UpdatedAt.Equal(r.Time) {
		t.Fatalf("info: version %d, updated at %s; want 2, %s (v2's time)", info.Version, info.UpdatedAt.Format(time.RFC3339Nano), r.Time.Format(time.RFC3339Nano))
	}
}
