package cassandra_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra"
	"github.com/eventlog/eventlog/internal/cassandra/cassandratest"
	"github.com/eventlog/eventlog/internal/log"
)

// counter is a toy aggregate: the sum of the events' "n" and their count.
type counter struct {
	Sum   int `json:"sum"`
	Count int `json:"count"`
}

func (c *counter) apply(ev *log.RecordedEvent) error {
	var d struct{ N int }
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return err
	}
	c.Sum += d.N
	c.Count++
	return nil
}

func TestSnapshots(t *testing.T) {
	s, o := cassandratest.NewStore(t, func(o *cassandra.Options) {
		o.BucketMaxEvents = 25
		o.Limits.MaxEventsPerAppend = 25
	})
	ctx := ctxT(t)
	for i := 0; i < 10; i++ {
		mustAppend(t, s, "agg-1", log.Any, events(10, "E")) // n = 0..9 each
	}
	// Fold 1..40 into a snapshot at 40, and 1..77 at 77.
	fold := func(to int64) counter {
		var c counter
		err := s.ReadStream(ctx, log.ReadRange{Stream: "agg-1", From: 1, To: to}, c.apply)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, v := range []int64{40, 77} {
		state, _ := json.Marshal(fold(v))
		info, err := s.PutSnapshot(ctx, "agg-1", v, state)
		if err != nil || info.Version != v || info.Size != len(state) || info.StoredSize == 0 {
			t.Fatalf("put snapshot %d: %+v %v", v, info, err)
		}
	}

	t.Run("Latest", func(t *testing.T) {
		for _, c := range []struct{ max, want int64 }{{0, 77}, {100, 77}, {77, 77}, {76, 40}, {40, 40}} {
			snap, err := s.LatestSnapshot(ctx, "agg-1", c.max)
			if err != nil || snap.Version != c.want {
				t.Fatalf("max %d: %+v %v", c.max, snap.SnapshotInfo, err)
			}
			var got counter
			if err := json.Unmarshal(snap.State, &got); err != nil || got != fold(c.want) {
				t.Fatalf("state at %d: %+v %v", c.want, got, err)
			}
		}
		if _, err := s.LatestSnapshot(ctx, "agg-1", 39); !errors.Is(err, log.ErrSnapshotNotFound) {
			t.Fatalf("below the first snapshot: %v", err)
		}
		if _, err := s.LatestSnapshot(ctx, "nothing-1", 0); !errors.Is(err, log.ErrSnapshotNotFound) {
			t.Fatalf("no snapshots: %v", err)
		}
	})

	t.Run("StateIsSnapshotPlusTail", func(t *testing.T) {
		for _, at := range []int64{0, 100, 77, 60, 40, 39, 1} {
			st, err := log.LoadState(ctx, s, "agg-1", at)
			if err != nil {
				t.Fatal(err)
			}
			var c counter
			if st.Snapshot != nil {
				if err := json.Unmarshal(st.Snapshot.State, &c); err != nil {
					t.Fatal(err)
				}
			}
			if !st.TailEmpty() {
				if err := s.ReadStream(ctx, st.Tail, c.apply); err != nil {
					t.Fatal(err)
				}
			}
			want := at
			if at == 0 {
				want = 100
			}
			if st.Version != want || c != fold(want) {
				t.Fatalf("state at %d: version %d, %+v, want %+v", at, st.Version, c, fold(want))
			}
			if wantSnap := at >= 40 || at == 0; (st.Snapshot != nil) != wantSnap {
				t.Fatalf("state at %d: snapshot %v", at, st.Snapshot != nil)
			}
		}
		var ve *log.ValidationError
		if _, err := log.LoadState(ctx, s, "agg-1", 101); !errors.As(err, &ve) {
			t.Fatalf("at above head: %v", err)
		}
		if _, err := log.LoadState(ctx, s, "nothing-1", 0); !errors.Is(err, log.ErrStreamNotFound) {
			t.Fatalf("missing stream: %v", err)
		}
	})

	t.Run("InvalidVersions", func(t *testing.T) {
		for _, v := range []int64{0, -1, 101} {
			var ve *log.ValidationError
			_, err := s.PutSnapshot(ctx, "agg-1", v, json.RawMessage(`{}`))
			if !errors.As(err, &ve) || ve.Code != log.CodeSnapshotVersion {
				t.Fatalf("version %d: %v", v, err)
			}
		}
		if _, err := s.PutSnapshot(ctx, "nothing-1", 1, json.RawMessage(`{}`)); err == nil {
			t.Fatal("snapshot of a missing stream accepted")
		}
	})

	t.Run("CompressesRealisticState", func(t *testing.T) {
		var items []string
		for i := 0; i < 500; i++ {
			items = append(items, fmt.Sprintf(`{"sku":"SKU-%05d","name":"Widget model %d","qty":%d,"price_cents":%d,"status":"reserved"}`, i, i%37, i%5+1, 1999+i%13))
		}
		state := json.RawMessage(`{"order":"agg-1","customer":{"id":"c-42","email":"a@example.com"},"items":[` + strings.Join(items, ",") + `]}`)
		info, err := s.PutSnapshot(ctx, "agg-1", 100, state)
		if err != nil {
			t.Fatal(err)
		}
		if info.StoredSize*5 > info.Size {
			t.Fatalf("stored %d bytes of %d: worse than 1/5", info.StoredSize, info.Size)
		}
	})

	t.Run("CorruptIsDetected", func(t *testing.T) {
		sess := cassandratest.Session(t, o)
		var blob []byte
		if err := sess.Query(`SELECT data FROM snapshots WHERE stream = 'agg-1' AND version = 40`).Scan(&blob); err != nil {
			t.Fatal(err)
		}
		for _, bad := range [][]byte{blob[:len(blob)/2], flip(blob, len(blob)-3), {}} {
			if err := sess.Query(`UPDATE snapshots SET data = ? WHERE stream = 'agg-1' AND version = 40`, bad).Exec(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.LatestSnapshot(ctx, "agg-1", 50); !errors.Is(err, log.ErrSnapshotCorrupt) {
				t.Fatalf("corrupt snapshot served: %v", err)
			}
		}
	})
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}
