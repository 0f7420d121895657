package user

// Check reports whether s accepts c, apart from the email being free
// (which only the reservation can tell): the command's fields are valid,
// a new user does not exist yet, and an existing one is not deleted. It
// returns an *InvalidError, ErrNotFound, ErrExists or ErrDeleted.
func Check(s State, c Command) error {
	_, err := normalize(c)
	if err != nil {
		return err
	}
	switch c.(type) {
	case CreateUser:
		if s.Exists() {
			return ErrExists
		}
	case UpdateUser, DeleteUser:
		if !s.Exists() {
			return ErrNotFound
		}
		if s.Deleted {
			return ErrDeleted
		}
	}
	return nil
}

// NewEmail returns the email c would give the user of s when it differs
// from the current one: the address to reserve before Decide. "" when c
// sets no new email (or fails Check).
func NewEmail(s State, c Command) string {
	c, err := normalize(c)
	if err != nil {
		return ""
	}
	switch c := c.(type) {
	case CreateUser:
		return c.Email
	case UpdateUser:
		if c.Email != nil && *c.Email != s.Email {
			return *c.Email
		}
	}
	return ""
}

// Decide returns the events that carry out c on s, or why c is rejected
// (the errors of Check). emailVersion is the version at which the caller
// reserved NewEmail(s, c) for this user; it is ignored when NewEmail is "".
// An update that changes nothing is accepted with no events.
//
// Decide is pure: the state and the reservation are its only facts.
func Decide(s State, c Command, emailVersion int64) ([]Event, error) {
	if err := Check(s, c); err != nil {
		return nil, err
	}
	newEmail := NewEmail(s, c)
	if newEmail != "" && emailVersion <= 0 {
		return nil, ErrEmailNotReserved
	}
	c, _ = normalize(c)
	switch c := c.(type) {
	case CreateUser:
		return []Event{UserCreated{ID: c.ID, Name: c.Name, Email: c.Email, EmailVersion: emailVersion}}, nil
	case UpdateUser:
		next := UserUpdated{Name: s.Name, Email: s.Email, EmailVersion: s.EmailVersion}
		if c.Name != nil {
			next.Name = *c.Name
		}
		if newEmail != "" {
			next.Email, next.EmailVersion = newEmail, emailVersion
		}
		if next.Name == s.Name && next.Email == s.Email {
			return nil, nil
		}
		return []Event{next}, nil
	case DeleteUser:
		return []Event{UserDeleted{}}, nil
	}
	return nil, &InvalidError{Message: "unknown command"}
}

// normalize validates c's fields and returns it with name trimmed and
// email normalised.
func normalize(c Command) (Command, error) {
	if c == nil {
		return nil, &InvalidError{Message: "no command"}
	}
	if !ValidID(c.UserID()) {
		if _, ok := c.(CreateUser); ok {
			return nil, &InvalidError{Field: "id", Message: "must be 1-64 characters from A-Z a-z 0-9 _ -"}
		}
		return nil, ErrNotFound
	}
	var err error
	switch c := c.(type) {
	case CreateUser:
		if c.Name, err = ValidateName(c.Name); err != nil {
			return nil, err
		}
		if c.Email, err = NormalizeEmail(c.Email); err != nil {
			return nil, err
		}
		return c, nil
	case UpdateUser:
		if c.Name == nil && c.Email == nil {
			return nil, &InvalidError{Message: "nothing to update: give name, email or both"}
		}
		if c.Name != nil {
			n, err := ValidateName(*c.Name)
			if err != nil {
				return nil, err
			}
			c.Name = &n
		}
		if c.Email != nil {
			e, err := NormalizeEmail(*c.Email)
			if err != nil {
				return nil, err
			}
			c.Email = &e
		}
		return c, nil
	case DeleteUser:
		return c, nil
	}
	return nil, &InvalidError{Message: "unknown command"}
}
