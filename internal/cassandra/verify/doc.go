// Package verify finds corrupt stored data: it reads every shard log
// record (every segment of every shard) and, when asked, every stream row
// (stream_events) and every snapshot, by token range, decodes each and checks it as the
// server's readers would (checksums, framing, a row's events against its
// versions, a log record's names), and reports each row that fails with
// its key. It never writes: `server verify` runs it beside production,
// its reads bounded in concurrency and, optionally, in rows a second.
//
// A finding is a *log.CorruptError, the error a read of the same row
// answers with (data_corrupt over HTTP); a log record's finding also says
// whether the record was already filled into the stream partitions (see
// README, "Operations", for what to do with each).
package verify
