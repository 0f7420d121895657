package shardlog_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/uuid"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
)

// logQueries counts the queries (each page one) a session sends to
// shard_log.
type logQueries struct{ n atomic.Int64 }

func (c *logQueries) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if strings.Contains(q.Statement, "FROM shard_log") {
		c.n.Add(1)
	}
}

// TestRangeOfAPageIsOneQuery: a read of exactly pageSize rows is one
// query. Cassandra ends a page that fills up with a paging state, and a
// page of pageSize rows had the driver ask again for nothing: half of a
// catch-up's queries.
func TestRangeOfAPageIsOneQuery(t *testing.T) {
	o := cassandratest.Options(t)
	o.Shards = 1
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cassandra.Migrate(ctx, o); err != nil {
		t.Fatalf("migrate %s (is Cassandra up?): %v", o.Keyspace, err)
	}
	t.Cleanup(func() { cassandratest.Drop(t, o) })
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	queries := &logQueries{}
	cluster.QueryObserver = queries
	session, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	l := shardlog.New(session, cluster.SerialConsistency)
	at := time.Now().UTC().Truncate(time.Millisecond)
	if applied, err := l.Open(ctx, 0, 0, 1, 0, 0, at); err != nil || !applied {
		t.Fatalf("open: %v %v", applied, err)
	}
	const rows = 10
	for seq := int64(1); seq <= rows; seq++ {
		c := &shardlog.Commit{Shard: 0, Segment: 0, Epoch: 1, Seq: seq, Floor: at, Time: at, CommitID: uuid.New(), Record: []byte{byte(seq)}}
		if out, err := l.Commit(ctx, c); err != nil || out != shardlog.Committed {
			t.Fatalf("commit %d: %v %v", seq, out, err)
		}
	}
	for _, c := range []struct {
		pageSize int
		want     int64 // queries
	}{{rows, 1}, {rows / 2, 2}, {rows - 1, 2}} {
		queries.n.Store(0)
		n := 0
		last, _, err := l.Rows(ctx, 0, 0, 0, rows, c.pageSize, func(r shardlog.Row) error {
			if n++; r.Seq != int64(n) || len(r.Record) != 1 || r.Record[0] != byte(n) {
				t.Fatalf("row %d: seq %d, record %v", n, r.Seq, r.Record)
			}
			return nil
		})
		if err != nil || n != rows || last != rows || queries.n.Load() != c.want {
			t.Fatalf("Rows of %d rows, pages of %d: %d rows, last seq %d, %d queries, %v; want %d queries", rows, c.pageSize, n, last, queries.n.Load(), err, c.want)
		}
		queries.n.Store(0)
		n = 0
		err = l.CommittedRows(ctx, 0, 0, 0, rows, c.pageSize, func(shardlog.Row) error { n++; return nil })
		if err != nil || n != rows || queries.n.Load() != c.want {
			t.Fatalf("CommittedRows of %d rows, pages of %d: %d rows, %d queries, %v; want %d queries", rows, c.pageSize, n, queries.n.Load(), err, c.want)
		}
	}
}
