// Package groups keeps the consumer groups of the shard-log write path
// (log.GroupStore; docs/consumer-groups.md). A group follows one feed; its
// partitions are the keyspace's shards, so a member holding shard s
// handles every event of the streams in s, in log order. A checkpoint is a
// position in the shard's log (feeds.ShardPos: the next event to deliver),
// read by the feeds reader with the group's feed as filter.
//
// Invariants:
//
//   - Fencing in storage. Each (group, shard) row of shard_group_leases
//     carries owner and epoch; a claim is a conditional write that raises
//     the epoch, and every renewal, acknowledgement and release is a
//     conditional write on (owner, epoch) and, for checkpoints, the
//     checkpoint it read. A member whose lease was taken over can never
//     move the checkpoint, whatever the clocks say: leases and clocks only
//     decide who tries to take a shard.
//   - Checkpoints never move back and only over events handed out. A
//     position reaches a client only as a token (Tokens): a MAC keyed from
//     the keyspace's token_secret over the group, the member, the shard,
//     the epoch of the lease it was read under and the position. An
//     acknowledgement's token must be one this keyspace issued to that
//     member of that group for that shard under that epoch, and its
//     position must be within the shard's committed log and, inside a log
//     row, before the row's last event (feeds.Reader.CheckInRow: every
//     read refuses a checkpoint past a row's events; one stored so by an
//     older build is read on from the next row, pastRows); anything else
//     is 400 invalid_position and moves nothing. Feed tokens, other
//     groups' or members' tokens and made-up ones all fail the MAC.
//   - A member that left holds nothing: a join reads the leases before it
//     renews the member's row, and one that claimed a lease then reads
//     the row at SERIAL and releases its claims if the member is gone
//     (checkClaims).
//   - Conditional writes that time out are never resent blindly: the row
//     is re-read at SERIAL consistency (which completes or supersedes the
//     proposal) and the decision is taken again (cql.CASErr maps driver
//     errors).
//   - Tokens are bound to the group's incarnation (shard_groups.id): a
//     group deleted and created again under its name accepts none of the
//     old group's positions.
//
// Members are found through shard_group_members, a row per member written
// on every join with a TTL; shards are split among the live members by
// log.Assign, so members beyond the shard count stay idle. A member row
// holds the SHA-256 of the member's secret, answered once by the join that
// created it (secrets.go); renewing joins present it, and the HTTP layer
// checks it (log.GroupSecrets) before a member's reads, acks and leave.
// Caps (MaxGroups, MaxMembers) are checked when a join creates a group or a
// member.
package groups
