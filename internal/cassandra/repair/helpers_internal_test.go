package repair

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore/shardstoretest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

// mustBlockStore opens a store that compacts nothing itself, appends to
// stream the BlockEvents 1-event appends of block 1..256, event i with
// data {"<key>":base+i}, each written as its own row by a read, and
// returns the store, its options, a session on its keyspace and a
// Repairer on it.
func mustBlockStore(t *testing.T, stream log.StreamID, key string, base int) (*shardstore.Store, shardstore.Options, *gocql.Session, *Repairer) {
	t.Helper()
	store, opts := shardstoretest.NewStore(t, func(so *shardstore.Options) { so.NoBlocks = true })
	ctx := context.Background()
	session := cassandratest.Session(t, opts.Cassandra)
	for i := 1; i <= streams.BlockEvents; i++ {
		e := log.ProposedEvent{ID: uuid.New(), ClientID: true, Type: "t", Data: json.RawMessage(fmt.Sprintf(`{"%s":%d}`, key, base+i))}
		if _, err := store.Append(ctx, log.AppendRequest{Stream: stream, Expected: log.Any, Events: []log.ProposedEvent{e}}); err != nil {
			t.Fatal(err)
		}
		if err := store.ReadStream(ctx, log.ReadRange{Stream: stream, From: int64(i)}, func(*log.RecordedEvent) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return store, opts, session, mustRepairer(t, session)
}

func mustRepairer(t *testing.T, session *gocql.Session) *Repairer {
	t.Helper()
	r, err := New(context.Background(), session, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// observedSession is a session on o's keyspace whose queries obs
// observes (a server's, or the repair's, with a hook in its window).
func observedSession(t *testing.T, o cassandra.Options, obs gocql.QueryObserver) *gocql.Session {
	t.Helper()
	c := gocql.NewCluster(o.Hosts...)
	c.Keyspace, c.Consistency, c.Timeout, c.QueryObserver = o.Keyspace, gocql.Quorum, 30*time.Second, obs
	s, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// rewriteAsRun writes the log's chunks of stream's versions first..last
// (in bucket, the last at seq) again as one run at key last, as a new
// owner's catch-up does (streams.Runs): the rows before last keep their
// own copies.
func rewriteAsRun(t *testing.T, r *Repairer, stream log.StreamID, bucket, first, last, seq int64, wantParts int) {
	t.Helper()
	ctx := context.Background()
	parts, reason, err := r.logChunks(ctx, partition.ShardOf(string(stream), r.shards), stream, bucket, first, last, seq)
	if err != nil || reason != "" || len(parts) != wantParts {
		t.Fatalf("the log's chunks %d..%d: %d parts, %q, %v; want %d", first, last, len(parts), reason, err, wantParts)
	}
	var pend []streams.Pending
	for _, p := range parts {
		pend = append(pend, streams.NewPending(p.seq, time.UnixMilli(p.time).UTC(), &p.chunk))
	}
	if err := streams.New(r.session, 100, time.Hour).WriteStream(ctx, pend, nil); err != nil {
		t.Fatal(err)
	}
}

// corruptAtOwnTime changes the first old in the row's record to new, at
// the record cell's own write timestamp, as a disk's error would leave it
// (new greater than old, so that it wins the tie), and returns the row as
// it was.
func corruptAtOwnTime(t *testing.T, r *Repairer, stream log.StreamID, bucket, last int64, old, new string) storedRow {
	t.Helper()
	row, ok, err := r.readRow(context.Background(), stream, bucket, last)
	if err != nil || !ok {
		t.Fatalf("row %d: %v, %v", last, ok, err)
	}
	bad := bytes.Replace(row.body, []byte(old), []byte(new), 1)
	if bytes.Equal(bad, row.body) {
		t.Fatalf("row %d: no %s in the body", last, old)
	}
	if err := r.session.Query(`UPDATE stream_events USING TIMESTAMP ? SET record = ? WHERE stream = ? AND bucket = ? AND last_version = ?`,
		row.wt, bad, string(stream), bucket, last).Exec(); err != nil {
		t.Fatal(err)
	}
	return row
}
