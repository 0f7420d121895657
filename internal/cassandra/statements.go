package cassandra

import (
	"errors"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/log"
)

// Statements names the CQL the store issues, for bench's raw-gocql
// baseline: it must send exactly what an append sends, so it takes the
// strings from here rather than keeping copies that could drift.
var Statements = struct {
	// AppendHead guards an append to a created bucket:
	// (last, time, stream, bucket, cur, fence) IF last_version = cur AND
	// sealed = false AND fence = fence (nil until a repairer fences).
	AppendHead string
	// OpenBucket is the first append to a bucket:
	// (first, last, time, opened_at, stream, bucket, fence) IF last_version
	// = null AND fence = fence.
	OpenBucket string
	// Insert is one event row: (stream, bucket, version, id, type, time,
	// data, metadata, append_first, append_last).
	Insert string
	// IndexBucket records a bucket in stream_buckets: (stream, bucket, first).
	IndexBucket string
	// RecordID records one client id before the write:
	// (stream, bucket, id, base, position, ttl seconds).
	RecordID string
	// FindIDsPrefix is the id lookup up to its IN list: (stream, bucket-1,
	// bucket, ids...); complete it with one "?" per id and ")" (at most
	// IDLookupChunk ids).
	FindIDsPrefix string
	// ReadAsc reads a version range of one bucket, as replay does:
	// (stream, bucket, from, to).
	ReadAsc string
	// Buckets lists a stream's buckets, newest first: (stream).
	Buckets string

	// Feeds (feeds.go), per append attempt: Intent before the write, then
	// Watermark; after an applied write, per feed partition FeedPeriod (once
	// per instance and partition) and one unlogged batch of FeedInsert;
	// then IntentDone.

	// Intent records an append attempt: (shard, period, at, stream,
	// attempt, bucket, base, count, first id).
	Intent string
	// IntentDone marks an attempt's feed work finished: (shard, period,
	// at, stream, attempt).
	IntentDone string
	// Watermark reads the feed watermark row: () → (watermark, pending,
	// period_ms, started).
	Watermark string
	// InitWatermark creates the watermark row on a keyspace's first use:
	// (watermark, period_ms, started) IF NOT EXISTS.
	InitWatermark string
	// FeedInsert is one event row of one feed: (feed, period, shard, at,
	// stream, version, id, type, data, metadata).
	FeedInsert string
	// FeedPeriod indexes a feed partition: (feed, day, period, shard).
	FeedPeriod string
}{
	AppendHead:    cqlAppendHead,
	OpenBucket:    cqlOpenBucket,
	Insert:        cqlInsert,
	IndexBucket:   cqlIndexBucket,
	RecordID:      cqlRecordID,
	FindIDsPrefix: cqlFindIDs,
	ReadAsc:       cqlReadAsc,
	Buckets:       cqlBuckets,
	Intent:        cqlIntent,
	IntentDone:    cqlIntentDone,
	Watermark:     cqlWatermark,
	InitWatermark: cqlInitWatermark,
	FeedInsert:    cqlFeedInsert,
	FeedPeriod:    cqlFeedPeriod,
}

// IDLookupChunk is the most ids one lookup query carries.
const IDLookupChunk = idLookupChunk

// The feed writers of one store: FeedWorkers goroutines take jobs from a
// queue of at most FeedQueue jobs and FeedQueueBytes of event data and
// metadata; beyond either the appender writes its feed rows itself before
// it answers.
const (
	FeedQueue      = feedQueue
	FeedQueueBytes = feedQueueBytes
	FeedWorkers    = feedWorkers
)

// ProvenNotApplied reports whether a driver error on a conditional write
// proves the write was not applied, as the store decides it (the append is
// unavailable and its feed intent is voided at once rather than left to
// the maintainer).
func ProvenNotApplied(err error) bool {
	return errors.Is(casErr("append", err), log.ErrUnavailable)
}

// NewClusterConfig returns the session configuration the store uses
// (token-aware routing, timeouts, consistency, no blind retries of
// conditional writes) for o's keyspace, so a raw-gocql client can start
// from the same settings.
func NewClusterConfig(o Options) (*gocql.ClusterConfig, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return newCluster(&o, o.Keyspace)
}
