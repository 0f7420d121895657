package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventlog/eventlog/internal/log"
)

func TestParseScope(t *testing.T) {
	for in, want := range map[string]string{
		"read:user-*": "read:user-*", "append:user-42": "append:user-42", "snapshot:*": "snapshot:*",
		"group:billing": "group:billing", "admin": "admin", "admin:*": "admin", "read:a*": "read:a*",
	} {
		s, err := ParseScope(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseScope(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "read", "read:", "write:*", "admin:user-*", "read:*user", "read:user-**", "read:-x",
		"read:a b", "read:" + strings.Repeat("a", 202), "READ:*", "read:ü*", ":*"} {
		if s, err := ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) = %v, want an error", bad, s)
		}
	}
}

func TestPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		match         bool
	}{
		{"*", "anything", true},
		{"user-*", "user-42", true},
		{"user-*", "user-", true},
		{"user-*", "user", false},
		{"user-*", "users-1", false},
		{"user-42", "user-42", true},
		{"user-42", "user-420", false},
		{"user*", "user", true},
		{"user*", "users-1", true},
	} {
		if got := Pattern(c.pattern).Match(c.name); got != c.match {
			t.Errorf("%q.Match(%q) = %v", c.pattern, c.name, got)
		}
	}
	for _, c := range []struct {
		pattern, prefix string
		covers          bool
	}{
		{"*", "", true},
		{"user-*", "user-", true},
		{"user*", "user-", true},
		{"user-4*", "user-", false},
		{"user-", "user-", false}, // exact: only the one name
		{"u*", "user-", true},
		{"user-*", "", false},
	} {
		if got := Pattern(c.pattern).CoversPrefix(c.prefix); got != c.covers {
			t.Errorf("%q.CoversPrefix(%q) = %v", c.pattern, c.prefix, got)
		}
	}
}

func mustKey(t *testing.T, scopes ...string) *Key {
	t.Helper()
	k, tok, err := NewKey("k", scopes, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if h := HashToken(tok); string(h[:]) != string(k.Hash) {
		t.Fatal("key hash is not the token's")
	}
	return &k
}

func TestKeyAllows(t *testing.T) {
	k := mustKey(t, "read:user-*", "append:user-42", "group:billing-*")
	for _, c := range []struct {
		action Action
		name   string
		want   bool
	}{
		{ActionRead, "user-1", true},
		{ActionRead, "order-1", false},
		{ActionAppend, "user-42", true},
		{ActionAppend, "user-43", false},
		{ActionSnapshot, "user-42", false},
		{ActionGroup, "billing-eu", true},
		{ActionGroup, "billing", false},
		{ActionAdmin, "", false},
	} {
		if got := k.Allows(c.action, c.name); got != c.want {
			t.Errorf("Allows(%s, %q) = %v", c.action, c.name, got)
		}
	}
	if !mustKey(t, "admin").Allows(ActionSnapshot, "x") || !mustKey(t, "admin").IsAdmin() || k.IsAdmin() {
		t.Fatal("admin")
	}
}

func TestKeyCanReadFeed(t *testing.T) {
	for _, c := range []struct {
		scopes []string
		feed   log.Feed
		want   bool
	}{
		{[]string{"read:*"}, log.AllFeed, true},
		{[]string{"read:*"}, log.TypeFeed("T"), true},
		{[]string{"read:user*"}, log.AllFeed, false},
		{[]string{"read:user*"}, log.TypeFeed("T"), false},
		{[]string{"read:user*"}, log.CategoryFeed("user"), true},
		// The category also holds the stream named "user" itself.
		{[]string{"read:user-*"}, log.CategoryFeed("user"), false},
		{[]string{"read:user-*", "read:user"}, log.CategoryFeed("user"), true},
		{[]string{"read:user-4*"}, log.CategoryFeed("user"), false},
		{[]string{"read:user-*"}, log.CategoryFeed("order"), false},
		{[]string{"append:*"}, log.CategoryFeed("user"), false},
		{[]string{"admin"}, log.AllFeed, true},
	} {
		if got := mustKey(t, c.scopes...).CanReadFeed(c.feed); got != c.want {
			t.Errorf("%v CanReadFeed(%s) = %v", c.scopes, c.feed, got)
		}
	}
}

func TestNewKey(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6e6+7, time.UTC)
	k, tok, err := NewKey("ci-1", []string{"read:*", "read:*", "admin"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Scopes) != 2 || !k.Expires.Equal(now.Truncate(time.Millisecond).Add(time.Hour)) || !k.Active(now) || k.Active(now.Add(time.Hour)) {
		t.Fatalf("key %+v", k)
	}
	if !strings.HasPrefix(tok, "evl_") || len(tok) != 47 {
		t.Fatalf("token %q", tok)
	}
	_, tok2, _ := NewKey("ci-2", []string{"read:*"}, 0, now)
	if tok2 == tok {
		t.Fatal("two keys, one token")
	}
	var ve *log.ValidationError
	for name, err := range map[string]error{
		"name":   func() error { _, _, err := NewKey("bad name", []string{"read:*"}, 0, now); return err }(),
		"scope":  func() error { _, _, err := NewKey("n", []string{"write:*"}, 0, now); return err }(),
		"none":   func() error { _, _, err := NewKey("n", nil, 0, now); return err }(),
		"expiry": func() error { _, _, err := NewKey("n", []string{"read:*"}, -time.Second, now); return err }(),
	} {
		if !errors.As(err, &ve) || ve.Code != CodeInvalidKey {
			t.Errorf("%s: %v, want invalid_key", name, err)
		}
	}
	k.Revoked = now
	if k.Active(now) {
		t.Fatal("revoked key active")
	}
}

func TestParseAuthorization(t *testing.T) {
	for in, want := range map[string]error{
		"":                                   ErrNoCredentials,
		"Bearer":                             ErrInvalidToken,
		"Bearer ":                            ErrInvalidToken,
		"Basic dXNlcjpwYXNz":                 ErrInvalidToken,
		"Bearer evl_abc def":                 ErrInvalidToken,
		"Bearer evl_abc\x00":                 ErrInvalidToken,
		"Bearer " + strings.Repeat("a", 129): ErrInvalidToken,
		"Bearer evl_abc":                     nil,
		"bearer  evl_abc":                    nil,
	} {
		tok, err := ParseAuthorization(in)
		if !errors.Is(err, want) || (err == nil && tok != "evl_abc") {
			t.Errorf("ParseAuthorization(%q) = %q, %v; want %v", in, tok, err, want)
		}
	}
}
