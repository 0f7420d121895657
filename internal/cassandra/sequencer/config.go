package sequencer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/shardlog"
	"github.com/eventlog/eventlog/internal/cassandra/streams"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
	"github.com/prometheus/client_golang/prometheus"
)

// Indexer writes index rows derived from the chunks being filled
// (package catalog). Every write must be idempotent.
type Indexer interface {
	// Rows returns the rows of chunks, grouped: piggy (at most room
	// partitions) to send with the chunks' own write, rest as batches for
	// Exec; done is called once all were written.
	Rows(shard int, chunks []streams.Pending, room int) (piggy []gocql.BatchEntry, rest [][]gocql.BatchEntry, done func())
	Exec(ctx context.Context, rows []gocql.BatchEntry) error
	// Write writes the rows of chunks on their own (a catch-up's).
	Write(ctx context.Context, shard int, chunks []streams.Pending) error
}

// Config configures a Sequencer. Zero fields take the defaults noted.
type Config struct {
	Session *gocql.Session
	Serial  gocql.Consistency
	Log     *shardlog.Log
	Streams *streams.Store
	// Shards and SegmentRows are the keyspace's (keyspace_config).
	Shards      int
	SegmentRows int64
	// Instance identifies this process among the keyspace's instances;
	// Address is where others forward appends for its shards.
	Instance string
	Address  string
	// Version is this binary's, recorded with the instance.
	Version string
	// SchemaVersion is the newest migration this binary carries, recorded
	// with the instance and with each shard it claims: it never claims a
	// shard a newer binary claimed last. Required.
	SchemaVersion int
	// LeaseTTL is how long a claim or renewal holds a shard. Default 5s.
	LeaseTTL time.Duration
	// Policy decides when buckets seal.
	Policy partition.Policy
	// IdempotencyWindow is how long client ids are kept. Default 24h.
	IdempotencyWindow time.Duration
	// MaxGroupBytes and MaxGroupAppends bound one commit. Defaults 1 MiB,
	// 1,024.
	MaxGroupBytes   int
	MaxGroupAppends int
	// QueueLimit bounds the appends waiting per shard. Default 8,192.
	QueueLimit int
	// CommitsInFlight bounds the conditional writes this instance has in
	// flight over all its shards (each shard has at most one); 0: one per
	// shard. Fewer commits at once make each carry more appends, and a
	// Paxos round costs about the same whatever it carries.
	CommitsInFlight int
	// FloorEvery is how long a shard may go without a commit before its
	// owner raises the log's floor (shardlog.Log.SetFloor) to now, so the
	// feeds' complete_up_to moves on past an idle shard. Default 1s.
	FloorEvery time.Duration
	// FillDelay is how long a committed record may wait before the filler
	// writes it to the stream partitions (a stream read writes its tail at
	// once): the longer, the more of a stream's appends share a write.
	// Default 0: write at once, behind the answer.
	FillDelay time.Duration
	// TailBytes bounds the committed payload a shard holds unwritten; past
	// it the oldest records are written at once, and past twice it commits
	// wait. Default 4 MiB.
	TailBytes int
	// HeadCache bounds the stream heads kept per shard. Default 20,000.
	HeadCache int
	// IDBudget bounds the client ids the heads hold, over every shard an
	// instance could own (each shard's heads hold at most IDBudget/Shards):
	// past it the least recently used heads with nothing unfilled drop
	// theirs, keeping a Bloom filter of them while the shard's filters
	// take at most 80 bytes × its share (heads.go), and look up the ids
	// of appends the filter may have seen. Default 500,000 (about 25 MB of
	// maps and 40 MB of filters).
	IDBudget int
	// IDsInHead is the most client ids a head keeps; a stream with more in
	// its current and previous bucket is looked up per append. Default
	// 4,096.
	IDsInHead int
	// Forward sends an append to the instance at address, which owns its
	// shard; nil means this instance never forwards.
	Forward func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error)
	// FlushRemote asks the instance at address, which owns the shard of
	// stream, to write the stream's tail (Flush); nil means this instance
	// never asks.
	FlushRemote func(ctx context.Context, address string, stream log.StreamID) error
	// Index, if set, writes the discovery indexes of chunks being filled
	// (package catalog): their rows ride in the requests that write the
	// chunks (Indexer.Rows), retried with them; a catch-up writes them
	// with Indexer.Write.
	Index Indexer
	// NoBlocks turns off rewriting the streams' complete blocks of
	// streams.BlockEvents as one row each behind the fill (blocks.go).
	NoBlocks bool
	// OnCommit, if set, is told each stream a commit touched (watchers).
	OnCommit func(stream log.StreamID)
	// OnRecord, if set, is told once per committed record, after
	// OnCommit's calls for its streams (feed watchers): at commit, as the
	// feeds read the log, not the stream partitions the filler writes.
	OnRecord func(shard int)
	// BeforeCommit, if set, runs before each conditional write of a shard's
	// log (tests pause an owner there).
	BeforeCommit func(shard int)
	// Paused, if set and true, makes the ownership loop do nothing, as if
	// the process were stopped (tests of fencing).
	Paused func() bool
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer, if set, receives the sequencer's metrics.
	Registerer prometheus.Registerer
}

func (c *Config) ensureDefaults() {
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.IdempotencyWindow <= 0 {
		c.IdempotencyWindow = 24 * time.Hour
	}
	if c.MaxGroupBytes <= 0 {
		c.MaxGroupBytes = 1 << 20
	}
	if c.MaxGroupAppends <= 0 {
		c.MaxGroupAppends = 1024
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 8192
	}
	if c.FloorEvery <= 0 {
		c.FloorEvery = time.Second
	}
	if c.TailBytes <= 0 {
		c.TailBytes = 4 << 20
	}
	if c.HeadCache <= 0 {
		c.HeadCache = 20_000
	}
	if c.IDBudget <= 0 {
		c.IDBudget = 500_000
	}
	if c.IDsInHead <= 0 {
		c.IDsInHead = 4096
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	switch {
	case c.Session == nil || c.Log == nil || c.Streams == nil:
		return errors.New("sequencer: Session, Log and Streams are required")
	case c.Shards < 1 || c.Shards > partition.MaxShards:
		return errors.New("sequencer: shard count out of range")
	case c.SegmentRows < 1:
		return errors.New("sequencer: segment rows must be positive")
	case c.Instance == "":
		return errors.New("sequencer: Instance is required")
	case c.SchemaVersion < 1:
		return errors.New("sequencer: SchemaVersion is required")
	}
	return c.Policy.Validate()
}
