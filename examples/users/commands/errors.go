package commands

import "errors"

// ErrConflict: the user kept changing under the command; it was decided
// again MaxAttempts times and never got its append in.
var ErrConflict = errors.New("the user changed concurrently too many times; try again")
