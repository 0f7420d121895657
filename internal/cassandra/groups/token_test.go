package groups_test

import (
	"encoding/base64"
	"errors"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/cassandra/groups"
	"github.com/eventlog/eventlog/internal/log"
)

func mustTokens(tb testing.TB, secret string) *groups.Tokens {
	tb.Helper()
	t, err := groups.NewTokens([]byte(secret))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

var (
	secretA = "0123456789abcdef0123456789abcdef"
	groupID = gocql.UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	sample  = groups.Position{Group: "g", GroupID: groupID, Member: "m", Shard: 3, Epoch: 7, Pos: feeds.ShardPos{Seq: 1234, Index: 5}}
)

func isInvalidPosition(err error) bool {
	var ve *log.ValidationError
	return errors.As(err, &ve) && ve.Code == log.CodeInvalidPosition
}

// TestTokenRoundTrip: a token decodes to what it encoded, for the group
// incarnation and member it was made for, and for no other.
func TestTokenRoundTrip(t *testing.T) {
	tk := mustTokens(t, secretA)
	tok := tk.Encode(sample)
	got, err := tk.Decode(tok, "g", groupID, "m")
	if err != nil || got != sample {
		t.Fatalf("decode: %+v %v, want %+v", got, err, sample)
	}
	other := groupID
	other[0] ^= 1
	for _, c := range []struct {
		name, group, member string
		id                  gocql.UUID
		tokens              *groups.Tokens
	}{
		{"OtherGroup", "h", "m", groupID, tk},
		{"OtherIncarnation", "g", "m", other, tk},
		{"OtherMember", "g", "n", groupID, tk},
		{"OtherSecret", "g", "m", groupID, mustTokens(t, "fedcba9876543210fedcba9876543210")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.tokens.Decode(tok, c.group, c.id, c.member); !isInvalidPosition(err) {
				t.Fatalf("decode: %v, want invalid_position", err)
			}
		})
	}
}

// TestTokenTampered: changing any character of a token, cutting it or
// extending it makes it invalid.
func TestTokenTampered(t *testing.T) {
	tk := mustTokens(t, secretA)
	tok := tk.Encode(sample)
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		b := []byte(tok)
		for _, c := range []byte(alphabet) {
			if c == tok[i] {
				continue
			}
			b[i] = c
			if _, err := tk.Decode(string(b), "g", groupID, "m"); err == nil {
				t.Fatalf("token with byte %d changed to %q accepted", i, c)
			}
		}
	}
	for _, bad := range []string{"", tok[:len(tok)-1], tok + "A", tok + "\n", "garbage"} {
		if _, err := tk.Decode(bad, "g", groupID, "m"); !isInvalidPosition(err) {
			t.Fatalf("decode %q: %v, want invalid_position", bad, err)
		}
	}
}

// FuzzTokenDecode: Decode never panics, and what it accepts encodes back
// to the same token.
func FuzzTokenDecode(f *testing.F) {
	tk := mustTokens(f, secretA)
	f.Add(tk.Encode(sample))
	f.Add("")
	f.Add("AQMHkgkFAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := tk.Decode(tok, "g", groupID, "m")
		if err != nil {
			return
		}
		again := tk.Encode(p)
		if raw, _ := base64.RawURLEncoding.DecodeString(tok); raw[0] == 1 {
			again = tk.EncodeHMAC(p) // a version-1 token
		}
		if again != tok {
			t.Fatalf("decoded %q to %+v, which encodes to %q", tok, p, again)
		}
	})
}

// TestTokenVersions: version-1 tokens (HMAC-SHA256), which servers issued
// before version 2 (SipHash), still decode; a token's mac is checked as
// its own version has it (a version byte swapped is refused); known
// tokens keep their spelling (version 1's taken from the code before
// version 2), so tokens held by members stay good across an upgrade.
func TestTokenVersions(t *testing.T) {
	tk := mustTokens(t, secretA)
	v1, v2 := tk.EncodeHMAC(sample), tk.Encode(sample)
	if v1 != "AQMH0gkFpHDgC6hFTw5-epLPP31o-Q" || v2 != "AgMH0gkF0uEJwQ3JOKIJoqSRqONSsA" {
		t.Errorf("tokens %s and %s", v1, v2)
	}
	for _, tok := range []string{v1, v2} {
		got, err := tk.Decode(tok, "g", groupID, "m")
		if err != nil || got != sample {
			t.Fatalf("decode %s: %+v %v, want %+v", tok, got, err, sample)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		raw[0] = 3 - raw[0] // 1 <-> 2, the mac unchanged
		if _, err := tk.Decode(base64.RawURLEncoding.EncodeToString(raw), "g", groupID, "m"); !isInvalidPosition(err) {
			t.Fatalf("%s with its version swapped: %v, want invalid_position", tok, err)
		}
	}
}
