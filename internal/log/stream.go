package log

import "strings"

// MaxStreamIDLen is the longest stream id accepted.
const MaxStreamIDLen = 200

// StreamID names a stream: 1–200 characters from [A-Za-z0-9_.:@+=-],
// starting with a letter or digit. Obtain one through ParseStreamID.
type StreamID string

// ParseStreamID validates s as a stream id.
func ParseStreamID(s string) (StreamID, error) {
	if ValidStreamID(s) {
		return StreamID(s), nil
	}
	if len(s) == 0 || len(s) > MaxStreamIDLen {
		return "", invalid(CodeInvalidStreamID, "stream id must be 1-%d characters", MaxStreamIDLen)
	}
	if !isAlnum(s[0]) {
		return "", invalid(CodeInvalidStreamID, "stream id must start with a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && strings.IndexByte("_.:@+=-", c) < 0 {
			return "", invalid(CodeInvalidStreamID, "stream id contains %q; allowed: A-Z a-z 0-9 _ . : @ + = -", c)
		}
	}
	return StreamID(s), nil
}

// Category is the part of the id before the first '-': "user" for "user-42".
// A stream without '-' is its own category.
func (s StreamID) Category() string {
	if i := strings.IndexByte(string(s), '-'); i >= 0 {
		return string(s[:i])
	}
	return string(s)
}

// MaxEventTypeLen is the longest event type accepted.
const MaxEventTypeLen = 200

// ValidateEventType checks t: 1–200 characters from [A-Za-z0-9_.:-].
func ValidateEventType(t string) error {
	if ValidEventType(t) {
		return nil
	}
	if len(t) == 0 || len(t) > MaxEventTypeLen {
		return invalid(CodeInvalidEvent, "event type must be 1-%d characters", MaxEventTypeLen)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isAlnum(c) && strings.IndexByte("_.:-", c) < 0 {
			return invalid(CodeInvalidEvent, "event type contains %q; allowed: A-Z a-z 0-9 _ . : -", c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ValidStreamID reports whether s is a valid stream id (ParseStreamID
// without the error), and ValidEventType whether t is a valid event type
// (ValidateEventType): a lookup a byte, so that decoders of stored records
// can check every name they read (package record) for a few nanoseconds
// (the checks with strings.IndexByte a byte took 25-30 ns for a 12-byte
// name).
func ValidStreamID(s string) bool {
	return len(s) > 0 && len(s) <= MaxStreamIDLen && isAlnum(s[0]) && allIn(s, &streamIDChars)
}

// ValidEventType: see ValidStreamID.
func ValidEventType(t string) bool {
	return len(t) > 0 && len(t) <= MaxEventTypeLen && allIn(t, &eventTypeChars)
}

// streamIDChars and eventTypeChars are the bytes each grammar allows.
var streamIDChars, eventTypeChars = charSet("_.:@+=-"), charSet("_.:-")

func charSet(punct string) (set [256]bool) {
	for c := range 256 {
		set[c] = isAlnum(byte(c)) || strings.IndexByte(punct, byte(c)) >= 0
	}
	return set
}

func allIn(s string, set *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}
