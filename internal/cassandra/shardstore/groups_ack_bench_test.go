package shardstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/shardstore"
	"github.com/eventlog/eventlog/internal/log"
)

// BenchmarkGroupAckInsideARow measures what the check of an acknowledged
// position inside a log row (feeds.Reader.CheckInRow: the row is read)
// costs, against the real node: CheckInRow alone, and a whole
// acknowledgement at a row's start (no row read) beside one inside a row.
// Both acknowledgements repeat the checkpoint (no conditional write), so
// they differ only by the check. docs/consumer-groups.md ("Costs") gives
// the figures and the command.
func BenchmarkGroupAckInsideARow(b *testing.B) {
	ctx := context.Background()
	o := cassandratest.Options(b)
	o.Shards, o.SegmentRows = 1, 50
	o.GroupLeaseTTL = time.Hour // held throughout
	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := cassandra.Migrate(mctx, o); err != nil {
		b.Fatalf("migrate: %v", err)
	}
	b.Cleanup(func() { cassandratest.Drop(b, o) })
	s, err := shardstore.Open(mctx, shardstore.Options{Cassandra: o, LeaseTTL: time.Second})
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	defer s.Close()
	for i := range 3 {
		if _, err := appendN(ctx, s, fmt.Sprintf("bench-%d", i), log.Any, 10); err != nil {
			b.Fatal(err)
		}
	}
	m, err := s.JoinGroup(ctx, log.JoinRequest{Group: "g", Feed: log.AllFeed, Member: "a"})
	if err != nil || len(m.Partitions) != 1 {
		b.Fatalf("join: %+v %v", m, err)
	}
	p, err := s.ReadGroup(ctx, log.GroupRead{Group: "g", Member: "a", Limit: 1000})
	if err != nil || len(p.Events) != 30 {
		b.Fatalf("read: %d events, %v", len(p.Events), err)
	}
	epoch, end := p.Partitions[0].Epoch, p.Partitions[0].Next
	if _, err := s.AckGroup(ctx, "g", "a", []log.Ack{{Partition: 0, Epoch: epoch, Position: end}}); err != nil {
		b.Fatal(err)
	}
	inside := p.Events[4].Position // the fifth of the first row's ten
	// A feed reader on a session set up as the store's.
	cluster, err := cassandra.NewClusterConfig(o)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := cluster.CreateSession()
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	layout, err := feeds.ReadLayout(ctx, sess)
	if err != nil {
		b.Fatal(err)
	}
	fr, err := feeds.New(sess, cluster.SerialConsistency, layout.Shards, layout.SegmentRows, layout.Secret, feeds.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("CheckInRow", func(b *testing.B) {
		for b.Loop() {
			if err := fr.CheckInRow(ctx, 0, feeds.ShardPos{Seq: 1, Index: 5}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct{ name, pos string }{{"AckAtRowStart", end}, {"AckInsideRow", inside}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.AckGroup(ctx, "g", "a", []log.Ack{{Partition: 0, Epoch: epoch, Position: c.pos}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
