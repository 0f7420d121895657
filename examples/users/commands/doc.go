// Package commands is the write side of the users example: it carries out
// user.CreateUser, UpdateUser and DeleteUser against eventlog, through the
// public client only.
//
// Each command is: load the user (latest snapshot + the events after it,
// one State request), Check it, reserve a new email if it sets one,
// Decide, and append the events with client.Exact(loaded version). A
// version conflict means another command changed the user in between: the
// command is loaded and decided again (Options.MaxAttempts). Every
// Options.SnapshotEvery events a snapshot of the state is stored, so a
// load reads at most that many events.
//
// # Unique emails: reservation streams
//
// eventlog streams are independent, so "no two users share an email"
// cannot be checked inside the user's stream. Checking the read model
// would race (two sign-ups read "free" before either is projected).
// Instead each address has a stream of its own, email-<sha256 of the
// address>, whose last event says who holds it: EmailReserved{user} or
// EmailReleased. Reserving appends EmailReserved with client.Exact(the
// version read), so of two concurrent reservations exactly one wins: the
// event store's optimistic concurrency is the uniqueness constraint.
// Every reservation appends (also by the same user), which makes the
// reservation stream's version a fencing token: events carry it
// (EmailVersion) and the read model uses it to order the owners of one
// address across users.
//
// A command reserves before it appends the user's event and releases the
// old address after; a crash in between leaves a reservation whose owner
// does not hold the address. Such a reservation is taken over by the next
// user who asks for the address once it is older than
// Options.ReservationGrace, which is longer than any command can still be
// appending (its timeout plus the server's append timeout).
package commands
