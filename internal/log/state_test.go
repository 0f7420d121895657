package log

import (
	"context"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/internal/fanout"
)

// snapStore answers Info and LatestSnapshot from fixed values, as a store
// would whose stream got a snapshot past the head between the two reads.
type snapStore struct {
	Store // the other methods: not called
	head  int64
	snaps []int64 // versions, ascending
}

func (s *snapStore) Info(_ context.Context, stream StreamID) (StreamInfo, error) {
	return StreamInfo{Stream: stream, Version: s.head}, nil
}

func (s *snapStore) LatestSnapshot(_ context.Context, stream StreamID, maxVersion int64) (Snapshot, error) {
	for i := len(s.snaps) - 1; i >= 0; i-- {
		if maxVersion == 0 || s.snaps[i] <= maxVersion {
			return Snapshot{SnapshotInfo: SnapshotInfo{Stream: stream, Version: s.snaps[i]}}, nil
		}
	}
	return Snapshot{}, ErrSnapshotNotFound
}

func TestLoadStateHead(t *testing.T) {
	for _, tc := range []struct {
		name       string
		head       int64
		snaps      []int64
		snap, from int64 // want; snap 0: none
	}{
		{"no snapshot", 10, nil, 0, 1},
		{"snapshot below the head", 10, []int64{4, 8}, 8, 9},
		{"snapshot at the head", 10, []int64{10}, 10, 11},
		// Put after Info read the head: the one at or below it is used.
		{"snapshot past the head", 10, []int64{4, 12}, 4, 5},
		{"only past the head", 10, []int64{12}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := LoadState(context.Background(), &snapStore{head: tc.head, snaps: tc.snaps}, "s-1", 0)
			if err != nil {
				t.Fatal(err)
			}
			got := int64(0)
			if st.Snapshot != nil {
				got = st.Snapshot.Version
			}
			if st.Version != tc.head || got != tc.snap || st.Tail.From != tc.from || st.Tail.To != tc.head {
				t.Fatalf("version %d, snapshot %d, tail %d..%d; want %d, %d, %d..%d",
					st.Version, got, st.Tail.From, st.Tail.To, tc.head, tc.snap, tc.from, tc.head)
			}
		})
	}
}

// panicSnapStore is a snapStore whose LatestSnapshot panics.
type panicSnapStore struct{ snapStore }

func (*panicSnapStore) LatestSnapshot(context.Context, StreamID, int64) (Snapshot, error) {
	panic("snapshot bug")
}

// TestLoadStatePanicIsTheCallers: a panic of the snapshot read LoadState
// runs beside Info, on a goroutine of its own, is raised on the caller's
// with its stack. It ended the process (the test binary crashed).
func TestLoadStatePanicIsTheCallers(t *testing.T) {
	var got any
	func() {
		defer func() { got = recover() }()
		_, _ = LoadState(context.Background(), &panicSnapStore{snapStore{head: 10}}, "s-1", 0)
	}()
	p, ok := got.(*fanout.Panic)
	if !ok || p.Value != "snapshot bug" || !strings.Contains(string(p.Stack), "(*panicSnapStore).LatestSnapshot(") {
		t.Fatalf("LoadState raised %v; want the snapshot read's panic with its stack", got)
	}
}
