// Package user is the domain of the users example: the commands a client
// sends (CreateUser, UpdateUser, DeleteUser), the events they become
// (UserCreated, UserUpdated, UserDeleted), the aggregate State those events
// build, and the two pure functions that connect them:
//
//	Decide(state, command, emailVersion) -> events or a rejection
//	Apply(state, recorded event)         -> next state
//
// Nothing here does I/O: loading, appending, reserving emails and
// projecting live in the commands and readmodel packages, which call these
// functions. That is what makes the rules testable as tables and lets the
// read model reuse Apply instead of re-implementing it.
//
// The type names follow the CQRS literature's running example on purpose
// (user.CreateUser, user.UserCreated), so a reader can map the book to the
// code one to one; the stutter is the price.
//
// Invariants: Apply never fails (events are facts already decided); Decide
// never returns events for a command Check rejects; an email in an event is
// always normalised (NormalizeEmail) and carries the version of its
// reservation stream (EmailVersion), which orders the successive owners of
// one address across users.
package user
