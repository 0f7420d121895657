// Package client is the Go client of the eventlog HTTP API: append events
// to streams (one by one or in bulk), read pages, replay whole streams as
// iterators, store and load snapshots, load aggregate state in one round
// trip, inspect streams and probe the server; read the feeds, follow streams
// and feeds live, consume feeds in groups and discover streams.
//
//	c, err := client.New(client.Options{BaseURL: "http://127.0.0.1:8080"})
//	res, err := c.Append(ctx, "user-42", client.NoStream,
//		client.EventData{Type: "UserCreated", Data: map[string]string{"name": "Ada"}})
//	for ev, err := range c.Replay(ctx, "user-42", client.ReplayOptions{}) { … }
//
// # Retries are safe
//
// Every event is sent with an id: the caller's, or a UUIDv7 the client
// generates before the first attempt. The server recognises an append
// whose ids it has already stored and answers it with the original
// versions (AppendResult.Duplicate) instead of writing again, so the client
// retries, with exponential back-off and jitter (RetryPolicy), whatever
// may be transient: 503 unavailable, 504 outcome_unknown, 502, failed or
// timed-out connections and responses cut short. It never retries a 4xx,
// nor a server certificate that fails verification (the request was not
// sent, and the next handshake would fail the same way).
// When the retries are spent, an append that may have been stored fails
// with an error matching ErrOutcomeUnknown: sending it again with the same
// ids is how to settle it. Reads, snapshots and state are retried the
// same way; Health and Ready are single probes.
//
// # Replay
//
// Replay streams a range as NDJSON and yields it as an iter.Seq2. If the
// connection breaks mid-way it resumes after the last version it yielded,
// so each event is yielded exactly once, in order.
//
// # Time travel
//
// StateAt loads an aggregate as it was at a moment, and ReadOptions.UntilTime
// and ReplayOptions.UntilTime limit reads to the events committed by then.
// A stream with no event by that moment is ErrStreamNotFound.
//
// # Errors
//
// The server's errors are *Problem values (RFC 9457 with a stable Code);
// errors.Is matches them by code against the Err… sentinels, e.g.
// errors.Is(err, ErrWrongExpectedVersion), and errors.As gives the fields
// (Problem.CurrentVersion on a version conflict).
//
// # Consumer groups
//
// Consume follows a feed as a member of a group: the group's members split
// the feed by stream (its partitions are the keyspace's shards), each
// stream handled by one member at a time and in order, with checkpoints
// kept by the server. It heartbeats,
// follows rebalancing, retries a failing handler, acknowledges what was
// handled, and leaves when its context ends. Delivery is at least once.
// To resume as the same member after a crash, save the secret
// ConsumeOptions.OnSecret is given and pass it back as
// ConsumeOptions.Secret.
// JoinGroup, ReadGroup, AckGroup, LeaveGroup and GroupInfo are the calls
// beneath it; an acknowledgement for a partition that moved on is
// ErrLeaseLost. See docs/consumer-groups.md in the repository.
//
// # Live subscriptions
//
// Subscribe follows one stream live (catch-up, then new events as they are
// appended), reconnecting with back-off and resuming after the last version
// it yielded.
//
// # Feeds
//
// Feeds hold the events of every stream (AllFeed), of a category
// (CategoryFeed) or of an event type (TypeFeed), in one order, each event
// with an opaque Position to resume after. ReadFeed reads a page, Feed
// catches up to the present as an iterator, SubscribeFeed follows live;
// the iterators resume after the last event they yielded, as Replay and
// Subscribe do.
//
// # Discovery
//
// ListStreams pages through the server's streams (by category, then id),
// Categories counts them, EventByID finds an event by its id and Cluster
// describes the instances and Cassandra nodes.
//
// # Module
//
// The package is a module of its own, apart from the server's:
//
//	go get github.com/eventlog/eventlog/client
//
// It imports nothing of the server, and its only dependency besides the
// standard library is github.com/google/uuid, so a program that imports it
// pulls in no Cassandra driver, HTTP framework, metrics or tracing
// libraries (the repository's internal/clienttest checks this, as
// TestNoInternalImports here checks the imports).
package client
