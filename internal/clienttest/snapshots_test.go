package clienttest_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/eventlog/eventlog/client"
)

type user struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
}

func TestSnapshotsAndState(t *testing.T) {
	c := MustClient(t, MustServer(t))
	ctx := ctx(t)
	if _, err := c.Append(ctx, "user-1", client.NoStream,
		client.EventData{Type: "UserCreated", Data: user{Name: "Ada"}},
		client.EventData{Type: "UserRenamed", Data: user{Name: "Ada L."}},
		client.EventData{Type: "UserDeleted", Data: user{Deleted: true}},
	); err != nil {
		t.Fatal(err)
	}

	t.Run("NoSnapshot", func(t *testing.T) {
		if _, err := c.LatestSnapshot(ctx, "user-1", 0); !errors.Is(err, client.ErrSnapshotNotFound) {
			t.Fatalf("err %v, want ErrSnapshotNotFound", err)
		}
		st, err := c.State(ctx, "user-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if st.Snapshot != nil || st.Version != 3 || !slices.Equal(versions(st.Events), []int64{1, 2, 3}) {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("Put", func(t *testing.T) {
		info, err := c.PutSnapshot(ctx, "user-1", 2, user{Name: "Ada L."})
		if err != nil {
			t.Fatal(err)
		}
		if info.Stream != "user-1" || info.Version != 2 || info.Size != len(`{"name":"Ada L.","deleted":false}`) ||
			info.StoredSize == 0 || info.Compression != "zstd" || info.CreatedAt.IsZero() {
			t.Fatalf("info %+v", info)
		}
		if _, err := c.PutSnapshot(ctx, "user-1", 2, user{Name: "Ada L."}); err != nil {
			t.Fatalf("put again: %v", err)
		}
	})
	t.Run("Latest", func(t *testing.T) {
		s, err := c.LatestSnapshot(ctx, "user-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		var u user
		if err := s.DecodeState(&u); err != nil || u.Name != "Ada L." || s.Version != 2 || s.Stream != "user-1" || s.Size == 0 {
			t.Fatalf("snapshot %+v (%s): %v", s, s.State, err)
		}
		if _, err := c.LatestSnapshot(ctx, "user-1", 1); !errors.Is(err, client.ErrSnapshotNotFound) {
			t.Fatalf("max version 1: %v, want ErrSnapshotNotFound", err)
		}
		info, err := c.StreamInfo(ctx, "user-1")
		if err != nil || info.LatestSnapshotVersion != 2 {
			t.Fatalf("info %+v, %v; want latest snapshot 2", info, err)
		}
	})
	t.Run("State", func(t *testing.T) {
		st, err := c.State(ctx, "user-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if st.Stream != "user-1" || st.Version != 3 || st.Snapshot == nil || st.Snapshot.Version != 2 ||
			string(st.Snapshot.State) != `{"name":"Ada L.","deleted":false}` || st.Snapshot.CreatedAt.IsZero() {
			t.Fatalf("state %+v snapshot %+v", st, st.Snapshot)
		}
		if !slices.Equal(versions(st.Events), []int64{3}) || st.Events[0].Type != "UserDeleted" || st.Events[0].Stream != "user-1" {
			t.Fatalf("events %+v, want version 3 only", st.Events)
		}
		st, err = c.State(ctx, "user-1", 1)
		if err != nil || st.Snapshot != nil || st.Version != 1 || !slices.Equal(versions(st.Events), []int64{1}) {
			t.Fatalf("state at 1: %+v, %v", st, err)
		}
		st, err = c.State(ctx, "user-1", 2)
		if err != nil || st.Snapshot == nil || st.Version != 2 || len(st.Events) != 0 {
			t.Fatalf("state at 2: %+v, %v", st, err)
		}
		if _, err := c.State(ctx, "user-404", 0); !errors.Is(err, client.ErrStreamNotFound) {
			t.Fatalf("state of a missing stream: %v, want ErrStreamNotFound", err)
		}
	})
	t.Run("ErrInvalidSnapshotVersion", func(t *testing.T) {
		for _, v := range []int64{0, 4} {
			if _, err := c.PutSnapshot(ctx, "user-1", v, user{}); !errors.Is(err, client.ErrInvalidSnapshotVersion) {
				t.Fatalf("version %d: %v, want ErrInvalidSnapshotVersion", v, err)
			}
		}
	})
}
