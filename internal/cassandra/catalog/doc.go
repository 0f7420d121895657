// Package catalog holds the discovery indexes of the shard-log write path
// in Cassandra: the stream catalog (a row per stream, by category), the
// categories, and the event id index (an id to the shard log row of each
// commit that holds it, which names its stream and version).
//
// The indexes are derived from committed records, like the stream
// partitions, and written by the same filler behind the commit (never on
// the answer path of an append), with the same idempotent writes: a
// catch-up or a zombie owner writes the same rows again. Their cost per
// append is kept small: the catalog row only for a chunk holding a
// stream's version 1 (and a category row the first time an instance sees
// the category), and the id rows grouped by their partition (shard,
// minute and a slot drawn per request) and commit, one statement each, so
// a fill request carries one partition more, not one per event; and those
// rows ride in the request that writes the chunks (Rows), so they cost no
// request of their own.
//
// Invariant: every row names an event that is committed; a stream is
// listed, and an event found by id, once the fill that wrote it is done
// (a read of the stream does it at once).
package catalog
