// Package repair writes a corrupt stream row (stream_events, a finding of
// kind chunk or run of package verify) again from the shard log records
// it was filled from: `server verify --streams --repair`.
//
// A stream row is derived from committed log records alone (record.Chunks
// is deterministic), and logs are never truncated, so its chunks can be
// made again: the row's stream gives its shard (partition.ShardOf), its
// shard_seq the record of its last chunk, and the log is read back from
// there, a window of seqs at a time, until the stream's chunks cover the
// row's versions first..last. Only committed records are read (a seq at
// or below its segment's last_seq, read with it, as a catch-up and the
// feeds take them), at most maxLogRecords of them for a row; a record
// that does not decode, a version not found in them, a
// chunk that straddles the row's bounds or lies in another bucket, a
// last chunk whose seq and commit time are not the row's, or a first
// version not confirmed (the row's first_version cell is not checked by
// its record, and may be the corrupt cell: it must be 1, its bucket's
// first version, or follow a version another row of the bucket holds;
// confirmFirst), and the row is unrepairable: nothing is written. Every
// row read waits for the Repairer's Limiter, if any (server verify shares
// its --rate limiter with the repair).
//
// The row is written again only with the same key, time and shard_seq, a
// body that decodes to exactly the chunks of the log (checked before the
// write and, read back, after it), and only while the row still holds the
// corrupt bytes read first (read again just before the write). The write
// sets the whole row (first_version, time, shard_seq, record; the
// partition's client ids stay as they are) at the corrupt record cell's
// write timestamp plus one: at the same timestamp Cassandra keeps the
// greater value, which may be the corrupt one. A compaction refuses a
// block holding a corrupt row; a block holding a repaired row compacts
// as any other, its block row written above the repaired row's
// timestamp when the repaired row is at the block's key. Why that is
// safe beside running servers is argued in repair.go (StreamRow).
package repair
