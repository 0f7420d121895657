package user_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventlog/eventlog/examples/users/user"
)

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ada@example.com", "ada@example.com"},
		{"  Ada.Lovelace+news@Example.CO.uk ", "ada.lovelace+news@example.co.uk"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"a_b-c@sub.example-mail.org", "a_b-c@sub.example-mail.org"},
	} {
		t.Run("OK/"+tc.in, func(t *testing.T) {
			got, err := user.NormalizeEmail(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, in := range []string{
		"", "   ", "ada", "ada@", "@example.com", "ada@localhost", "ada@@example.com",
		"Ada <ada@example.com>", `"ada lovelace"@example.com`, "ada@[127.0.0.1]", "ada @example.com",
		"ada@.example.com", "ada@example.com.", "ada@example..com", "ada@-example.com",
		strings.Repeat("a", 250) + "@example.com",
	} {
		t.Run("Invalid/"+in, func(t *testing.T) {
			var inv *user.InvalidError
			if got, err := user.NormalizeEmail(in); !errors.As(err, &inv) || inv.Field != "email" {
				t.Errorf("got %q, %v; want an invalid email", got, err)
			}
		})
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", " A@B.co ", "a@b", "\"x\"@y.z", "a@b..c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := user.NormalizeEmail(in)
		if err != nil {
			return
		}
		// The normal form is a fixed point, so comparing normalised
		// addresses is comparing users' addresses.
		if again, err := user.NormalizeEmail(got); err != nil || again != got {
			t.Errorf("NormalizeEmail(%q) = %q, then %q, %v", in, got, again, err)
		}
	})
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Ada", "Ada", true},
		{"  Ada Lovelace  ", "Ada Lovelace", true},
		{"Åsa Öberg", "Åsa Öberg", true},
		{strings.Repeat("é", 100), strings.Repeat("é", 100), true},
		{"", "", false},
		{" \t ", "", false},
		{strings.Repeat("é", 101), "", false},
		{"Ada\nLovelace", "", false},
		{"\xff", "", false},
	} {
		got, err := user.ValidateName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ValidateName(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"0190a1b2-0000-7000-8000-000000000001": true, "u1": true, "a_b": true,
		"": false, "a/b": false, "a b": false, "ü": false, strings.Repeat("a", 65): false,
	} {
		if got := user.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}
