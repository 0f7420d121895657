package sequencer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/record"
)

// TestCatchUpRefusesInvalidNames: a log record whose stream id or event
// type breaks the grammar an append is given it in (a corrupt row: the
// record decoder checks only their lengths) is not written to the stream
// partitions by the next owner's catch-up: the takeover fails, and the
// shard stays unowned, rather than a stream no append could name appear.
func TestCatchUpRefusesInvalidNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream log.StreamID
		typ    string
	}{
		{"StreamID", "bad stream", "Tested"},
		{"EventType", "named-2", "bad type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := handoverKeyspace(t, 1)
			s := retrySequencer(t, o, time.Hour, nil, nil)
			closeS := sync.OnceFunc(func() { handoverClose(s) })
			t.Cleanup(closeS)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := s.Append(ctx, retryRequest(t, "named-1", 1, nil, "a")); err != nil {
				t.Fatal(err)
			}
			closeS() // seq 1 is past the filled mark its commit recorded
			rec := record.Record{Appends: []record.Append{{Stream: tc.stream, FirstVersion: 1, OpensBucket: true,
				Events: []record.Event{{ID: uuid.New(), Type: tc.typ, Data: []byte(`{}`)}}}}}
			session := cassandratest.Session(t, o)
			err := session.Query(`UPDATE shard_log SET record = ? WHERE shard = 0 AND segment = 0 AND seq = 1`, record.AppendRecord(nil, &rec)).Exec()
			if err != nil {
				t.Fatal(err)
			}

			cfg := testConfig(t, o, "i-"+uuid.NewString())
			cfg.Streams = streams.New(cfg.Session, o.PageSize, time.Hour)
			cfg.Address, cfg.LeaseTTL = "b", 10*time.Second
			next, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { handoverClose(next) })
			_ = next.tickAndTake(ctx) // the takeover's error is logged
			var rows int
			if err := session.Query(`SELECT COUNT(*) FROM stream_events WHERE stream = ? AND bucket = 0`, string(tc.stream)).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if owned := next.Owned(); rows != 0 || len(owned) != 0 {
				t.Fatalf("catch-up wrote %d rows of stream %q (event type %q), owns shards %v; want none", rows, tc.stream, tc.typ, owned)
			}
			// What an operator is alerted by (deploy/prometheus-rules.yml).
			var m dto.Metric
			if err := next.metrics.takeFailed.Write(&m); err != nil {
				t.Fatal(err)
			}
			if n := m.GetCounter().GetValue(); n < 1 {
				t.Fatalf("eventlog_shard_takeovers_failed_total %v; want the refused takeover counted", n)
			}
		})
	}
}
