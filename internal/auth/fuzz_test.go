package auth

import (
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer evl_abc", "bearer x", "Basic a", "Bearer " + strings.Repeat("z", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := ParseAuthorization(h)
		if err != nil {
			if tok != "" {
				t.Fatal("token with an error")
			}
			return
		}
		if tok == "" || len(tok) > maxTokenLen || strings.ContainsAny(tok, " \t\r\n:") {
			t.Fatalf("accepted token %q from %q", tok, h)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"read:*", "admin", "append:user-*", "group:a", "read:*x", "snapshot:"} {
		f.Add(s, "user-1")
	}
	f.Fuzz(func(t *testing.T, s, name string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		// Its text form parses back to the same scope.
		again, err := ParseScope(sc.String())
		if err != nil || again != sc {
			t.Fatalf("%q -> %v -> %v, %v", s, sc, again, err)
		}
		p := string(sc.Pattern)
		if strings.Count(p, "*") > 1 || (strings.Contains(p, "*") && !strings.HasSuffix(p, "*")) {
			t.Fatalf("pattern %q accepted", p)
		}
		// A match by an exact pattern is equality; a prefix pattern
		// covering a prefix matches every name with it.
		if sc.Pattern.Match(name) && !strings.HasSuffix(p, "*") && name != p {
			t.Fatalf("%q matches %q", p, name)
		}
		if sc.Pattern.CoversPrefix(name) && !sc.Pattern.Match(name+"x") {
			t.Fatalf("%q covers %q but not %q", p, name, name+"x")
		}
	})
}
