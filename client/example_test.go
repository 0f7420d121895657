package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/eventlog/eventlog/client"
	"github.com/google/uuid"
)

// The examples that talk to a server expect one on 127.0.0.1:8080
// (README: scripts/cassandra up && go run ./cmd/server serve --migrate);
// they compile with the tests but do not run.

type UserCreated struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

func Example() {
	ctx := context.Background()
	c, err := client.New(client.Options{BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		log.Fatal(err)
	}

	// Create the stream; fails with ErrWrongExpectedVersion if it exists.
	res, err := c.Append(ctx, "user-42", client.NoStream, client.EventData{
		Type:     "UserCreated",
		Data:     UserCreated{Name: "Ada", Email: "ada@example.com"},
		Metadata: map[string]string{"correlation_id": "c-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored at", res.FirstVersion, "with id", res.Events[0].ID)

	// Read it back, all of it.
	for ev, err := range c.Replay(ctx, "user-42", client.ReplayOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Version, ev.Type, string(ev.Data))
	}
}

func ExampleNew() {
	c, err := client.New(client.Options{
		BaseURL:   "https://eventlog.internal.example.com",
		UserAgent: "billing-service/1.4",
		Retry: client.RetryPolicy{
			MaxAttempts: 8,
			BaseDelay:   50 * time.Millisecond,
			MaxDelay:    2 * time.Second,
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = c
}

// Optimistic concurrency: append only if nobody else appended since
// version 7 was read, and learn the current version when someone did.
func ExampleClient_Append() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	_, err := c.Append(ctx, "user-42", client.Exact(7),
		client.EventData{Type: "UserRenamed", Data: map[string]string{"name": "Ada L."}})
	var p *client.Problem
	switch {
	case errors.Is(err, client.ErrWrongExpectedVersion) && errors.As(err, &p):
		fmt.Println("conflict: the stream is at", p.CurrentVersion)
	case errors.Is(err, client.ErrOutcomeUnknown):
		// Retries were spent; the append may be stored. Sending it again
		// with the same event ids settles it.
		fmt.Println("unknown:", err)
	case err != nil:
		log.Fatal(err)
	}
}

// Ids derived from the command make an append safe to repeat even from
// another process, e.g. after a crash between sending and recording it.
func ExampleEventData_idempotent() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	commandID := "7d0b6a1e-cmd-rename-user-42"
	ev := client.EventData{
		ID:   uuid.NewSHA1(uuid.NameSpaceURL, []byte(commandID)),
		Type: "UserRenamed",
		Data: map[string]string{"name": "Ada L."},
	}
	res, err := c.Append(ctx, "user-42", client.Any, ev)
	if err != nil {
		log.Fatal(err)
	}
	if res.Duplicate {
		fmt.Println("already stored at version", res.FirstVersion)
	}
}

func ExampleClient_Replay() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	// Resumes by itself if the connection breaks; each event once, in order.
	n := 0
	for ev, err := range c.Replay(ctx, "user-42", client.ReplayOptions{From: 1}) {
		if err != nil {
			log.Fatal(err)
		}
		var data map[string]any
		if err := ev.DecodeData(&data); err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(n, "events")
}

func ExampleClient_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := client.New(client.Options{})

	// Catches up from version 1, then follows the stream live until ctx
	// ends; reconnects and resumes by itself.
	for ev, err := range c.Subscribe(ctx, "user-42", client.SubscribeOptions{From: 1}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Version, ev.Type)
	}
}

// Page through every event of a category, across streams, in one order.
// An empty page means nothing newer is in the feed yet: keep Next and ask
// again later.
func ExampleClient_ReadFeed() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	from := "" // the start; or a position saved earlier
	for {
		page, err := c.ReadFeed(ctx, client.CategoryFeed("user"), from, 500)
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range page.Events {
			fmt.Println(ev.Position, ev.Stream, ev.Version, ev.Type)
		}
		from = page.Next
		if len(page.Events) == 0 {
			fmt.Println("complete up to", page.CompleteUpTo)
			break
		}
	}
}

// Catch a projection up with every event of a type since the position it
// stored, then stop.
func ExampleClient_Feed() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	checkpoint := "" // load the projection's last position here
	for ev, err := range c.Feed(ctx, client.TypeFeed("UserCreated"), client.FeedOptions{From: checkpoint}) {
		if err != nil {
			log.Fatal(err)
		}
		var u UserCreated
		if err := ev.DecodeData(&u); err != nil {
			log.Fatal(err)
		}
		checkpoint = ev.Position // store it with the projection's state
	}
	fmt.Println("caught up at", checkpoint)
}

// Follow every event of every stream as it is committed, starting now;
// reconnects and resumes by itself.
func ExampleClient_SubscribeFeed() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := client.New(client.Options{})

	for ev, err := range c.SubscribeFeed(ctx, client.AllFeed, client.FeedOptions{From: client.FromNow}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Stream, ev.Version, ev.Type, ev.Time)
	}
}

func ExampleClient_Read() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	// The ten newest events, newest first.
	page, err := c.Read(ctx, "user-42", client.ReadOptions{Backward: true, Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range page.Events {
		fmt.Println(ev.Version, ev.Type)
	}

	// Every event, page by page.
	opts := client.ReadOptions{Limit: 500}
	for {
		page, err := c.Read(ctx, "user-42", opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(page.Events), "events")
		if page.Next == 0 {
			break
		}
		opts.From = page.Next
	}
}

func ExampleClient_AppendBulk() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	results, err := c.AppendBulk(ctx, []client.BulkAppend{
		{Stream: "user-43", Expected: client.NoStream, Events: []client.EventData{{Type: "UserCreated", Data: UserCreated{Name: "Bob"}}}},
		{Stream: "user-44", Expected: client.NoStream, Events: []client.EventData{{Type: "UserCreated", Data: UserCreated{Name: "Cy"}}}},
	})
	if err != nil {
		log.Fatal(err) // the request as a whole failed
	}
	for i, r := range results {
		if r.Err != nil {
			fmt.Println(i, "failed:", r.Err)
			continue
		}
		fmt.Println(i, r.Result.Stream, "at", r.Result.LastVersion)
	}
}

// Load an aggregate from its latest snapshot and the events after it, and
// store a new snapshot every 100 events.
func ExampleClient_State() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	type user struct {
		Name    string `json:"name"`
		Deleted bool   `json:"deleted"`
	}
	st, err := c.State(ctx, "user-42", 0)
	if err != nil {
		log.Fatal(err)
	}
	var u user
	from := int64(0)
	if st.Snapshot != nil {
		if err := st.Snapshot.DecodeState(&u); err != nil {
			log.Fatal(err)
		}
		from = st.Snapshot.Version
	}
	for _, ev := range st.Events {
		switch ev.Type {
		case "UserCreated", "UserRenamed":
			_ = json.Unmarshal(ev.Data, &u)
		case "UserDeleted":
			u.Deleted = true
		}
	}
	if st.Version-from >= 100 {
		if _, err := c.PutSnapshot(ctx, "user-42", st.Version, u); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("user-42 at version %d: %+v\n", st.Version, u)
}

// Load an aggregate as it was at a moment: the latest snapshot before it
// and the events after that snapshot committed by then.
func ExampleClient_StateAt() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	yesterday := time.Now().Add(-24 * time.Hour)
	st, err := c.StateAt(ctx, "user-42", yesterday)
	if errors.Is(err, client.ErrStreamNotFound) {
		fmt.Println("user-42 did not exist yet")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user-42 was at version", st.Version)

	// The events themselves, as of the same moment.
	for ev, err := range c.Replay(ctx, "user-42", client.ReplayOptions{UntilTime: yesterday}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Version, ev.Type, ev.Time)
	}
}

func ExampleClient_StreamInfo() {
	ctx := context.Background()
	c, _ := client.New(client.Options{})

	info, err := c.StreamInfo(ctx, "user-42")
	if errors.Is(err, client.ErrStreamNotFound) {
		fmt.Println("no such stream")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Category, info.Version, info.LatestSnapshotVersion)
}

func ExampleProblem() {
	// What Append returns for a version conflict, as the server sent it.
	var err error = fmt.Errorf("eventlog: append to user-42: %w", &client.Problem{
		Type:           "urn:eventlog:problem:wrong_expected_version",
		Title:          "Conflict",
		Status:         409,
		Detail:         "stream user-42: expected version no_stream, current version 3",
		Code:           client.CodeWrongExpectedVersion,
		CurrentVersion: 3,
	})

	fmt.Println(errors.Is(err, client.ErrWrongExpectedVersion))
	fmt.Println(errors.Is(err, client.ErrStreamNotFound))
	var p *client.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Code, p.CurrentVersion, p.Retryable())
	}
	// Output:
	// true
	// false
	// 409 wrong_expected_version 3 false
}

func ExampleExact() {
	for _, e := range []client.ExpectedVersion{client.Any, client.NoStream, client.Exists, client.Exact(3)} {
		b, _ := json.Marshal(e)
		fmt.Println(e, string(b))
	}
	// Output:
	// any "any"
	// no_stream "no_stream"
	// exists "exists"
	// 3 3
}
