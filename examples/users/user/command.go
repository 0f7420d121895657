package user

// Command is a request to change one user. Commands are validated by Check
// and turned into events by Decide; they are never stored.
type Command interface {
	// UserID is the user the command is for.
	UserID() string
}

// CreateUser registers a new user under a fresh id.
type CreateUser struct {
	ID    string
	Name  string
	Email string
}

// UpdateUser changes a user's name, email or both; a nil field is left
// as it is.
type UpdateUser struct {
	ID    string
	Name  *string
	Email *string
}

// DeleteUser ends a user and frees its email.
type DeleteUser struct {
	ID string
}

func (c CreateUser) UserID() string { return c.ID }
func (c UpdateUser) UserID() string { return c.ID }
func (c DeleteUser) UserID() string { return c.ID }
