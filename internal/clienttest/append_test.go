package clienttest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/eventlog/eventlog/client"
	"github.com/google/uuid"
)

type userCreated struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

func versions(evs []client.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func TestAppendRead(t *testing.T) {
	c := MustClient(t, MustServer(t))
	ctx := ctx(t)

	id := uuid.Must(uuid.NewV7())
	res, err := c.Append(ctx, "user-42", client.NoStream,
		client.EventData{ID: id, Type: "UserCreated", Data: userCreated{"Ada", "ada@example.com"},
			Metadata: map[string]string{"correlation_id": "c-1"}},
		client.EventData{Type: "UserRenamed", Data: json.RawMessage(`{ "name" : "Ada L." }`)},
		client.EventData{Type: "UserDeleted", Data: []byte(`{}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stream != "user-42" || res.FirstVersion != 1 || res.LastVersion != 3 || res.Duplicate || len(res.Events) != 3 {
		t.Fatalf("append result %+v", res)
	}
	if got := res.Events[0]; got.ID != id || got.Version != 1 {
		t.Fatalf("events[0] = %+v, want the given id at 1", got)
	}
	for _, e := range res.Events[1:] {
		if e.ID.Version() != 7 {
			t.Fatalf("generated id %s is not a UUIDv7", e.ID)
		}
	}

	t.Run("Forward", func(t *testing.T) {
		p, err := c.Read(ctx, "user-42", client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := versions(p.Events), []int64{1, 2, 3}; !slices.Equal(got, want) || p.Next != 0 {
			t.Fatalf("versions %v next %d, want %v next 0", got, p.Next, want)
		}
		e := p.Events[0]
		if e.Stream != "user-42" || e.ID != id || e.Type != "UserCreated" || e.Time.IsZero() {
			t.Fatalf("event %+v", e)
		}
		var u userCreated
		if err := e.DecodeData(&u); err != nil || u != (userCreated{"Ada", "ada@example.com"}) {
			t.Fatalf("data %s: %+v %v", e.Data, u, err)
		}
		if got, want := string(e.Metadata), `{"correlation_id":"c-1"}`; got != want {
			t.Fatalf("metadata %s, want %s", got, want)
		}
		if got, want := string(p.Events[1].Data), `{"name":"Ada L."}`; got != want {
			t.Fatalf("raw data %s, want %s (compacted)", got, want)
		}
		if p.Events[1].Metadata != nil {
			t.Fatalf("metadata %s, want none", p.Events[1].Metadata)
		}
		for i, e := range p.Events {
			if e.ID != res.Events[i].ID {
				t.Fatalf("events[%d].ID = %s, want %s", i, e.ID, res.Events[i].ID)
			}
		}
	})
	t.Run("Pages", func(t *testing.T) {
		p, err := c.Read(ctx, "user-42", client.ReadOptions{From: 1, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := versions(p.Events); !slices.Equal(got, []int64{1, 2}) || p.Next != 3 {
			t.Fatalf("page 1: %v next %d", got, p.Next)
		}
		p, err = c.Read(ctx, "user-42", client.ReadOptions{From: p.Next, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := versions(p.Events); !slices.Equal(got, []int64{3}) || p.Next != 0 {
			t.Fatalf("page 2: %v next %d", got, p.Next)
		}
	})
	t.Run("Backward", func(t *testing.T) {
		p, err := c.Read(ctx, "user-42", client.ReadOptions{Backward: true, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if got := versions(p.Events); !slices.Equal(got, []int64{3, 2}) || p.Next != 1 {
			t.Fatalf("backward: %v next %d", got, p.Next)
		}
		p, err = c.Read(ctx, "user-42", client.ReadOptions{Backward: true, From: 2, To: 3})
		if err != nil {
			t.Fatal(err)
		}
		if got := versions(p.Events); !slices.Equal(got, []int64{3, 2}) || p.Next != 0 {
			t.Fatalf("backward 2..3: %v next %d", got, p.Next)
		}
	})
	t.Run("PastHead", func(t *testing.T) {
		p, err := c.Read(ctx, "user-42", client.ReadOptions{From: 10})
		if err != nil || len(p.Events) != 0 {
			t.Fatalf("page %+v, %v; want empty", p, err)
		}
	})
	t.Run("StreamInfo", func(t *testing.T) {
		info, err := c.StreamInfo(ctx, "user-42")
		if err != nil {
			t.Fatal(err)
		}
		if info.Stream != "user-42" || info.Category != "user" || info.Version != 3 || info.Buckets != 1 ||
			info.CreatedAt.IsZero() || info.UpdatedAt.Before(info.CreatedAt) || info.LatestSnapshotVersion != 0 {
			t.Fatalf("info %+v", info)
		}
	})
	t.Run("ErrStreamNotFound", func(t *testing.T) {
		_, err := c.Read(ctx, "user-404", client.ReadOptions{})
		if !errors.Is(err, client.ErrStreamNotFound) {
			t.Fatalf("read: %v, want ErrStreamNotFound", err)
		}
		_, err = c.StreamInfo(ctx, "user-404")
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != http.StatusNotFound || p.Code != client.CodeStreamNotFound {
			t.Fatalf("info: %v, want a 404 stream_not_found problem", err)
		}
	})
	t.Run("StreamIDCharacters", func(t *testing.T) {
		const stream = "order:eu@2026+x=1_a.b-7"
		if _, err := c.Append(ctx, stream, client.NoStream, client.EventData{Type: "E", Data: 1}); err != nil {
			t.Fatal(err)
		}
		p, err := c.Read(ctx, stream, client.ReadOptions{})
		if err != nil || p.Stream != stream || len(p.Events) != 1 || p.Events[0].Stream != stream {
			t.Fatalf("page %+v, %v", p, err)
		}
		info, err := c.StreamInfo(ctx, stream)
		if err != nil || info.Stream != stream || info.Category != "order:eu@2026+x=1_a.b" {
			t.Fatalf("info %+v, %v", info, err)
		}
	})
	t.Run("Health", func(t *testing.T) {
		if err := c.Health(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAppendExpectedVersion(t *testing.T) {
	px := MustProxy(t, MustServer(t))
	c := MustClient(t, px.URL)
	ctx := ctx(t)
	ev := client.EventData{Type: "E", Data: 1}

	if _, err := c.Append(ctx, "s-1", client.Exists, ev); !errors.Is(err, client.ErrWrongExpectedVersion) {
		t.Fatalf("exists on a new stream: %v, want ErrWrongExpectedVersion", err)
	}
	if _, err := c.Append(ctx, "s-1", client.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		expected client.ExpectedVersion
	}{
		{"NoStream", client.NoStream},
		{"Exact0", client.Exact(0)},
		{"Exact5", client.Exact(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := px.Requests()
			_, err := c.Append(ctx, "s-1", tc.expected, ev)
			if !errors.Is(err, client.ErrWrongExpectedVersion) {
				t.Fatalf("err %v, want ErrWrongExpectedVersion", err)
			}
			var p *client.Problem
			if !errors.As(err, &p) {
				t.Fatalf("err %T is not a *Problem", err)
			}
			if p.Status != http.StatusConflict || p.CurrentVersion != 1 || p.Type != "urn:eventlog:problem:wrong_expected_version" || p.Detail == "" {
				t.Fatalf("problem %+v, want 409 with current version 1", p)
			}
			if errors.Is(err, client.ErrIdempotencyConflict) || errors.Is(err, client.ErrOutcomeUnknown) || p.Retryable() {
				t.Fatalf("%v matches other sentinels", err)
			}
			if after, _ := px.Requests(); len(after) != len(before)+1 {
				t.Fatalf("%d requests, want 1: a 409 is never retried", len(after)-len(before))
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		for _, e := range []client.ExpectedVersion{client.Exact(1), client.Exists, client.Any} {
			if _, err := c.Append(ctx, "s-1", e, ev); err != nil {
				t.Fatalf("expected %s: %v", e, err)
			}
		}
		info, err := c.StreamInfo(ctx, "s-1")
		if err != nil || info.Version != 4 {
			t.Fatalf("info %+v, %v; want version 4", info, err)
		}
	})
	t.Run("Negative", func(t *testing.T) {
		if _, err := c.Append(ctx, "s-1", client.Exact(-1), ev); err == nil {
			t.Fatal("Exact(-1) was accepted")
		}
	})
}

func TestAppendIdempotent(t *testing.T) {
	c := MustClient(t, MustServer(t))
	ctx := ctx(t)
	evs := []client.EventData{
		{ID: uuid.Must(uuid.NewV7()), Type: "A", Data: map[string]int{"n": 1}},
		{ID: uuid.Must(uuid.NewV7()), Type: "B", Data: map[string]int{"n": 2}},
	}
	for _, tc := range []struct {
		name     string
		stream   string
		expected client.ExpectedVersion
	}{
		{"Any", "idem-any", client.Any},
		{"NoStream", "idem-new", client.NoStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := c.Append(ctx, tc.stream, tc.expected, evs...)
			if err != nil {
				t.Fatal(err)
			}
			second, err := c.Append(ctx, tc.stream, tc.expected, evs...)
			if err != nil {
				t.Fatal(err)
			}
			if first.Duplicate || !second.Duplicate {
				t.Fatalf("duplicate %v then %v, want false then true", first.Duplicate, second.Duplicate)
			}
			if second.FirstVersion != first.FirstVersion || second.LastVersion != first.LastVersion ||
				!slices.Equal(second.Events, first.Events) {
				t.Fatalf("retry answered %+v, want the original %+v", second, first)
			}
			info, err := c.StreamInfo(ctx, tc.stream)
			if err != nil || info.Version != 2 {
				t.Fatalf("info %+v, %v; want version 2: stored once", info, err)
			}
		})
	}
	t.Run("ErrIdempotencyConflict", func(t *testing.T) {
		other := evs[0]
		other.Data = map[string]int{"n": 99}
		_, err := c.Append(ctx, "idem-any", client.Any, other)
		if !errors.Is(err, client.ErrIdempotencyConflict) {
			t.Fatalf("reused id with another payload: %v, want ErrIdempotencyConflict", err)
		}
	})
}

func TestAppendInvalid(t *testing.T) {
	px := MustProxy(t, MustServer(t))
	c := MustClient(t, px.URL)
	ctx := ctx(t)
	for _, tc := range []struct {
		name   string
		stream string
		ev     client.EventData
		code   string
	}{
		{"StreamID", "bad id", client.EventData{Type: "E", Data: 1}, client.CodeInvalidStreamID},
		{"EventType", "s-1", client.EventData{Type: "bad type", Data: 1}, client.CodeInvalidEvent},
		{"Metadata", "s-1", client.EventData{Type: "E", Data: 1, Metadata: []int{1}}, client.CodeInvalidEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := px.Requests()
			_, err := c.Append(ctx, tc.stream, client.Any, tc.ev)
			var p *client.Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Code != tc.code {
				t.Fatalf("err %v, want 400 %s", err, tc.code)
			}
			if after, _ := px.Requests(); len(after) != len(before)+1 {
				t.Fatalf("%d requests, want 1: a 400 is never retried", len(after)-len(before))
			}
		})
	}
	t.Run("DataNotJSON", func(t *testing.T) {
		before, _ := px.Requests()
		if _, err := c.Append(ctx, "s-1", client.Any, client.EventData{Type: "E", Data: json.RawMessage(`{`)}); err == nil {
			t.Fatal("invalid raw JSON was accepted")
		}
		if after, _ := px.Requests(); len(after) != len(before) {
			t.Fatal("invalid JSON was sent")
		}
	})
}
