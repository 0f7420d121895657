// Package readmodel is the query side of the users example: the users as
// the projection last saw them, in Cassandra tables of the example's own
// keyspace (schema.cql), and Project, the handler that a consumer group
// feeds with the events of the "user" category.
//
// users_by_id is the read model proper, one row per user: the user.State
// that user.Apply — the same function the command side folds with — makes
// of the events seen. users_by_email is an index from address to user id.
//
// The consumer group delivers at least once, and members may process
// different users in any relative order, so Project is idempotent and
// order-tolerant:
//
//   - a users_by_id row stores the stream version of the last event
//     applied; an event at or below it is skipped, and the row is written
//     with a compare-and-set on that version, so two deliveries of one
//     event cannot both apply;
//   - index rows are written before the users_by_id row, which is the
//     commit point: a crash in between leaves the row at its old version,
//     so the redelivered event redoes the (idempotent) index writes;
//   - an index row carries the version of the address's reservation
//     stream (user.UserCreated.EmailVersion), which increases with every
//     change of owner; an index write or delete only applies over an older
//     one, so A's old event arriving after B took the address over cannot
//     undo B's entry;
//   - a query by email reads the index, then the user's row, and answers
//     only if the row still has that address and is not deleted.
package readmodel
