// Package feeds reads the feeds — all, category/<c>, type/<t> — straight
// from the shard logs (shardlog; docs/design-write-path.md, "Feeds are the
// shard logs"). There is no feed table: a feed is the S logs read in
// sequence, keeping the events it selects.
//
// A position is a Cursor: for each shard, the seq of the next log row to
// read and the index of the next event in it. Invariants (I8, feeds
// exactly once):
//
//   - Never skip. A shard's position moves only over rows this read
//     actually got, contiguously from the position (a row missing in the
//     middle is an error, never a jump). A shard is at its end only when
//     the last row read is the segment's last_seq seen by the same query,
//     or, when no row follows the position, by a read of the statics after
//     it: rows committed after that are past the position and are read
//     next time. The logs have no holes (seq = last_seq+1 under the commit
//     condition) and records never change, so a position names the same
//     events forever.
//   - Each event once. Every event is at exactly one (shard, seq, index);
//     an event is returned only from the position before it, and every
//     returned event's own Cursor (and Page.Next) is past it and past
//     nothing unreturned except rows and events the feed does not select.
//   - Order. A page merges the selected shards by (commit time, shard,
//     seq, index); each shard's events keep their log order, so each
//     stream's events come in version order. On a log that is not growing,
//     consecutive pages are consecutive slices of one order, so reading on
//     from any event's Cursor returns exactly the events after it.
//   - Bounded work. One Read passes at most Options.ScanRows rows and
//     returns at most Limit events; rows that hold no selected event still
//     move the position, so a rare feed makes progress.
//   - Positions from clients are tokens (Tokens): versioned binary,
//     authenticated with a 128-bit SipHash-2-4 MAC over the feed, the
//     shard count and the positions (version 1 tokens, HMAC-SHA256, are
//     still accepted), keyed from the keyspace's token_secret. A token that
//     fails is ErrBadToken; a position past a shard's committed log is
//     ErrFuturePosition (which is also ErrBadToken), found by Read.
//
// CompleteUpTo (Page) is exact: just under what the selected shards'
// logs promise (their first row not passed, or their last commit or
// floor); a shard whose log was never opened makes no promise, and then
// neither does the page.
//
// Reads must run at a quorum consistency (the session's default), as
// everywhere in eventlog: below it a position handed out a moment ago
// could look like one from the future.
package feeds
