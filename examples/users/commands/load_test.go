package commands_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventlog/eventlog/client"
	"github.com/eventlog/eventlog/examples/users/commands"
	"github.com/eventlog/eventlog/examples/users/internal/testenv"
	"github.com/eventlog/eventlog/examples/users/user"
)

// TestSnapshotEvery: a snapshot is stored each time a stream reaches a
// multiple of SnapshotEvery, it equals the fold of the events, and a load
// starts from it.
func TestSnapshotEvery(t *testing.T) {
	const every = 3
	h, c, _ := MustHandler(t, func(o *commands.Options) { o.SnapshotEvery = every })
	ctx := testenv.Context(t)
	id := MustHandle(t, h, user.CreateUser{Name: "Ada", Email: "ada@example.com"}).ID
	stream := user.Stream(id)

	if _, err := c.LatestSnapshot(ctx, stream, 0); !errors.Is(err, client.ErrSnapshotNotFound) {
		t.Fatalf("snapshot after 1 event: %v, want ErrSnapshotNotFound", err)
	}
	for i := 2; i <= 7; i++ {
		MustHandle(t, h, user.UpdateUser{ID: id, Name: ptr(fmt.Sprintf("Ada %d", i))})
	}
	for _, tc := range []struct{ max, want int64 }{{0, 6}, {5, 3}} {
		snap, err := c.LatestSnapshot(ctx, stream, tc.max)
		if err != nil || snap.Version != tc.want {
			t.Fatalf("latest snapshot at or below %d: %+v, %v; want version %d", tc.max, snap, err, tc.want)
		}
	}

	// The snapshot is the fold of the events up to its version, commit
	// times included.
	snap, err := c.LatestSnapshot(ctx, stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Format int        `json:"format"`
		State  user.State `json:"state"`
	}
	if err := snap.DecodeState(&got); err != nil {
		t.Fatal(err)
	}
	want := MustFold(t, c, stream, 6)
	if got.Format != 1 || !got.State.CreatedAt.Equal(want.CreatedAt) || !got.State.UpdatedAt.Equal(want.UpdatedAt) ||
		got.State.Name != want.Name || got.State.Version != 6 {
		t.Fatalf("snapshot %+v\nwant      %+v", got, want)
	}

	// A load reads the snapshot and only the events after it: a planted
	// snapshot at the head shows through.
	if st, err := c.State(ctx, stream, 0); err != nil || st.Snapshot == nil || st.Snapshot.Version != 6 || len(st.Events) != 1 {
		t.Fatalf("state request: %+v, %v; want snapshot 6 and one event", st, err)
	}
	planted := got
	planted.State.Name, planted.State.Version = "from the snapshot", 7
	if _, err := c.PutSnapshot(ctx, stream, 7, planted); err != nil {
		t.Fatal(err)
	}
	if s := MustLoad(t, h, id); s.Name != "from the snapshot" || s.Version != 7 {
		t.Fatalf("load ignored the snapshot: %+v", s)
	}

	// A snapshot of a format this code does not know is ignored: the
	// load replays the stream.
	if _, err := c.PutSnapshot(ctx, stream, 7, map[string]any{"format": 99, "state": planted.State}); err != nil {
		t.Fatal(err)
	}
	if s := MustLoad(t, h, id); s != MustFold(t, c, stream, 7) {
		t.Fatalf("load with an unknown snapshot format: %+v", s)
	}
}

// MustFold folds stream's events 1..to, read without snapshots.
func MustFold(t *testing.T, c *client.Client, stream string, to int64) user.State {
	t.Helper()
	var s user.State
	for ev, err := range c.Replay(testenv.Context(t), stream, client.ReplayOptions{To: to}) {
		if err != nil {
			t.Fatal(err)
		}
		e, err := user.Decode(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		s = user.Apply(s, user.Recorded{Version: ev.Version, Time: ev.Time, Event: e})
	}
	return s
}
