package user

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field limits. Generous, but bounded: a name or an email is stored in
// every event and every read-model row.
const (
	MaxNameLen  = 100 // characters
	MaxEmailLen = 254 // bytes, the SMTP limit on a path
	MaxIDLen    = 64
)

// ValidateName returns name trimmed, or an *InvalidError.
func ValidateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", &InvalidError{Field: "name", Message: "must not be empty"}
	case !utf8.ValidString(name):
		return "", &InvalidError{Field: "name", Message: "must be valid UTF-8"}
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", &InvalidError{Field: "name", Message: "must be at most 100 characters"}
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", &InvalidError{Field: "name", Message: "must not contain control characters"}
	}
	return name, nil
}

// NormalizeEmail returns email in the one form the system stores and
// compares: trimmed and lower-cased. Lower-casing the local part is, by
// the RFC, not always the same mailbox; every large provider treats it so,
// and "Ada@x.com" and "ada@x.com" as two users is the surprise we avoid.
//
// The format accepted is a bare addr-spec (no display name, no quoted
// local part, no IP literal) whose domain has a dot: what a sign-up form
// means by an email address.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	bad := func(msg string) (string, error) {
		return "", &InvalidError{Field: "email", Message: msg}
	}
	if e == "" {
		return bad("must not be empty")
	}
	if len(e) > MaxEmailLen {
		return bad("must be at most 254 bytes")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e || strings.ContainsAny(e, "\"[] \t") {
		return bad("must be an address like name@example.com")
	}
	at := strings.LastIndexByte(e, '@')
	domain := e[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") || strings.HasPrefix(domain, "-") {
		return bad("must have a domain like example.com")
	}
	return e, nil
}

// ValidID reports whether id can be a user id: 1–64 characters from
// [A-Za-z0-9_-], so user-<id> is always a valid stream id. Ids are
// generated UUIDs; anything else can only name a user that does not exist.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
