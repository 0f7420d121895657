package auth

import (
	"fmt"
	"strings"
)

// Action is what a scope allows.
type Action string

// The actions of scopes.
const (
	// ActionRead: events, info, state, snapshots (GET), subscriptions and
	// feeds of matching streams.
	ActionRead Action = "read"
	// ActionAppend: appends to matching streams.
	ActionAppend Action = "append"
	// ActionSnapshot: storing snapshots of matching streams.
	ActionSnapshot Action = "snapshot"
	// ActionGroup: consumer groups whose name matches (with read on the
	// group's feed).
	ActionGroup Action = "group"
	// ActionAdmin: everything, including keys and /metrics.
	ActionAdmin Action = "admin"
)

// maxPatternLen bounds a pattern: a stream id (200) and its '*'.
const maxPatternLen = 201

// Pattern names streams or groups: an exact name, or a prefix ending in
// '*' ("user-*", "*"). Obtain one through ParsePattern.
type Pattern string

// ParsePattern validates s: the characters of a stream id
// ([A-Za-z0-9_.:@+=-], starting with a letter or digit), optionally ending
// in '*'; "*" alone matches everything.
func ParsePattern(s string) (Pattern, error) {
	prefix, _ := strings.CutSuffix(s, "*")
	if len(s) == 0 || len(s) > maxPatternLen {
		return "", fmt.Errorf("pattern must be 1-%d characters", maxPatternLen)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return "", fmt.Errorf("pattern %q must start with a letter, a digit or be *", s)
		}
		if !alnum && strings.IndexByte("_.:@+=-", c) < 0 {
			return "", fmt.Errorf("pattern %q contains %q; allowed: A-Z a-z 0-9 _ . : @ + = - and a final *", s, c)
		}
	}
	return Pattern(s), nil
}

// Match reports whether name matches p.
func (p Pattern) Match(name string) bool {
	if prefix, ok := strings.CutSuffix(string(p), "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return string(p) == name
}

// CoversPrefix reports whether every name that starts with prefix matches
// p: p is a wildcard whose prefix is a prefix of prefix.
func (p Pattern) CoversPrefix(prefix string) bool {
	if pre, ok := strings.CutSuffix(string(p), "*"); ok {
		return strings.HasPrefix(prefix, pre)
	}
	return false
}

// Scope is one permission of a key: Action on the names Pattern matches.
// Admin scopes have the pattern "*".
type Scope struct {
	Action  Action
	Pattern Pattern
}

// String is the scope's text form: "read:user-*", "admin".
func (s Scope) String() string {
	if s.Action == ActionAdmin {
		return string(ActionAdmin)
	}
	return string(s.Action) + ":" + string(s.Pattern)
}

// ParseScope parses ACTION:PATTERN (action read, append, snapshot or
// group) or "admin" (also written "admin:*").
func ParseScope(s string) (Scope, error) {
	action, pattern, ok := strings.Cut(s, ":")
	switch Action(action) {
	case ActionAdmin:
		if ok && pattern != "*" {
			return Scope{}, fmt.Errorf("scope %q: admin allows everything and takes no pattern", s)
		}
		return Scope{Action: ActionAdmin, Pattern: "*"}, nil
	case ActionRead, ActionAppend, ActionSnapshot, ActionGroup:
	default:
		return Scope{}, fmt.Errorf("scope %q: want read, append, snapshot or group:PATTERN, or admin", s)
	}
	if !ok {
		return Scope{}, fmt.Errorf("scope %q: want %s:PATTERN (a stream id, or a prefix ending in *)", s, action)
	}
	p, err := ParsePattern(pattern)
	if err != nil {
		return Scope{}, fmt.Errorf("scope %q: %w", s, err)
	}
	return Scope{Action: Action(action), Pattern: p}, nil
}

// ParseScopes parses each of ss (at least one, at most 100), dropping
// repeats.
func ParseScopes(ss []string) ([]Scope, error) {
	if len(ss) == 0 || len(ss) > 100 {
		return nil, fmt.Errorf("a key needs 1-100 scopes")
	}
	out := make([]Scope, 0, len(ss))
	seen := make(map[Scope]bool, len(ss))
	for _, s := range ss {
		sc, err := ParseScope(s)
		if err != nil {
			return nil, err
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return out, nil
}
