package feeds_test

import (
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func mustTokens(tb testing.TB, secret []byte, shards int) *feeds.Tokens {
	tb.Helper()
	t, err := feeds.NewTokens(secret, shards)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func randomCursor(rng *rand.Rand, shards int) feeds.Cursor {
	ps := make([]feeds.ShardPos, shards)
	for i := range ps {
		switch rng.IntN(4) {
		case 0: // start
		case 1:
			ps[i] = feeds.ShardPos{Seq: 1 + rng.Int64N(100)}
		case 2:
			ps[i] = feeds.ShardPos{Seq: 1 + rng.Int64N(1<<40), Index: 1 + rng.IntN(1000)}
		default:
			ps[i] = feeds.ShardPos{Seq: 1<<62 - rng.Int64N(10)}
		}
	}
	return feeds.NewCursor(ps)
}

// checkBad fails unless err is a refused position, in both forms the HTTP
// layer can see it.
func checkBad(t *testing.T, what string, err error) {
	t.Helper()
	var ve *log.ValidationError
	if !errors.Is(err, feeds.ErrBadToken) || !errors.As(err, &ve) || ve.Code != log.CodeInvalidPosition {
		t.Fatalf("%s: err = %v, want ErrBadToken with code invalid_position", what, err)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shards := range []int{1, 4, 8, 1024} {
		tk := mustTokens(t, testSecret, shards)
		for i := 0; i < 200; i++ {
			c := randomCursor(rng, shards)
			tok := tk.Encode(c, "category/user")
			if c.IsZero() != (tok == "") {
				t.Fatalf("cursor %v: token %q", c, tok)
			}
			got, err := tk.Decode(tok, "category/user")
			if err != nil {
				t.Fatalf("decode %v: %v", c, err)
			}
			if !got.Equal(c) {
				t.Fatalf("round trip: got %v, want %v", got, c)
			}
		}
	}
	tk := mustTokens(t, testSecret, 8)
	if c, err := tk.Decode("", "all"); err != nil || !c.IsZero() {
		t.Fatalf("empty token: %v %v, want the start", c, err)
	}
	if tok := tk.Encode(feeds.NewCursor(make([]feeds.ShardPos, 8)), "all"); tok != "" {
		t.Fatalf("start encodes as %q, want empty", tok)
	}
	// Compact: 8 shards near the start fit in a few dozen characters.
	c := feeds.NewCursor([]feeds.ShardPos{{Seq: 12}, {Seq: 3, Index: 2}, {}, {Seq: 900}, {Seq: 2}, {}, {Seq: 7}, {Seq: 70000}})
	if tok := tk.Encode(c, "all"); len(tok) > 48 {
		t.Fatalf("token %q is %d characters", tok, len(tok))
	}
}

func TestTokenRefused(t *testing.T) {
	tk := mustTokens(t, testSecret, 4)
	c := feeds.NewCursor([]feeds.ShardPos{{Seq: 5}, {Seq: 2, Index: 1}, {}, {Seq: 300}})
	tok := tk.Encode(c, "type/OrderPlaced")
	if _, err := tk.Decode(tok, "type/OrderPlaced"); err != nil {
		t.Fatal(err)
	}
	t.Run("OtherFeed", func(t *testing.T) {
		for _, f := range []string{"all", "type/OrderPlace", "category/OrderPlaced", "type/OrderPlaced "} {
			_, err := tk.Decode(tok, f)
			checkBad(t, f, err)
		}
	})
	t.Run("OtherShardCount", func(t *testing.T) {
		for _, n := range []int{3, 5} {
			_, err := mustTokens(t, testSecret, n).Decode(tok, "type/OrderPlaced")
			checkBad(t, "other shard count", err)
		}
	})
	t.Run("OtherSecret", func(t *testing.T) {
		other := append([]byte(nil), testSecret...)
		other[0] ^= 1
		_, err := mustTokens(t, other, 4).Decode(tok, "type/OrderPlaced")
		checkBad(t, "other secret", err)
	})
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Altered", func(t *testing.T) {
		for i := range raw {
			for _, bit := range []byte{1, 0x80} {
				b := append([]byte(nil), raw...)
				b[i] ^= bit
				_, err := tk.Decode(base64.RawURLEncoding.EncodeToString(b), "type/OrderPlaced")
				checkBad(t, "altered byte", err)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		for n := 1; n < len(tok); n++ {
			_, err := tk.Decode(tok[:n], "type/OrderPlaced")
			checkBad(t, "truncated", err)
		}
		_, err := tk.Decode(tok+"A", "type/OrderPlaced")
		checkBad(t, "extended", err)
	})
	t.Run("Forged", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 500; i++ {
			b := make([]byte, 1+rng.IntN(64)) // "" is the start
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			if len(b) > 0 && i%2 == 0 {
				b[0] = byte(1 + i/2%2) // a right version
			}
			_, err := tk.Decode(base64.RawURLEncoding.EncodeToString(b), "type/OrderPlaced")
			checkBad(t, "forged", err)
		}
		for _, s := range []string{"!!!", "AQ==", "a b", string(make([]byte, 100000))} {
			_, err := tk.Decode(s, "type/OrderPlaced")
			checkBad(t, "garbage", err)
		}
	})
	t.Run("ShortSecret", func(t *testing.T) {
		if _, err := feeds.NewTokens(testSecret[:15], 4); err == nil {
			t.Fatal("a 15-byte secret was accepted")
		}
	})
}

func TestCursor(t *testing.T) {
	if !feeds.NewCursor([]feeds.ShardPos{{Seq: 1}, {}}).IsZero() {
		t.Fatal("row 1 event 0 everywhere is not the start")
	}
	c := feeds.NewCursor([]feeds.ShardPos{{Seq: 1}, {Seq: 0, Index: 2}, {Seq: 9}})
	if got, want := c.Shard(0), (feeds.ShardPos{}); got != want {
		t.Fatalf("shard 0: %v, want %v", got, want)
	}
	if got, want := c.Shard(1), (feeds.ShardPos{Seq: 1, Index: 2}); got != want {
		t.Fatalf("shard 1: %v, want %v", got, want)
	}
	if c.String() != "0.0 1.2 9.0" || c.Len() != 3 || c.Shard(7) != (feeds.ShardPos{}) {
		t.Fatalf("cursor %v len %d", c, c.Len())
	}
	ps := c.Positions()
	ps[2].Seq = 100
	if c.Shard(2).Seq != 9 {
		t.Fatal("Positions returned the cursor's own array")
	}
	if !feeds.NewCursor(ps).Equal(feeds.NewCursor(ps)) || feeds.NewCursor(ps).Equal(c) || !(feeds.Cursor{}).Equal(feeds.NewCursor(make([]feeds.ShardPos, 3))) {
		t.Fatal("Equal")
	}
}

func FuzzDecodeToken(f *testing.F) {
	tk := mustTokens(f, testSecret, 4)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 8; i++ {
		f.Add(tk.Encode(randomCursor(rng, 4), "all"))
	}
	f.Add("")
	f.Add("AQQ")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := tk.Decode(tok, "all")
		if err != nil {
			checkBad(t, "fuzz", err)
			return
		}
		if again := tk.Encode(c, "all"); again != tok {
			t.Fatalf("accepted %q, which re-encodes as %q", tok, again)
		}
	})
}

// TestTokenVersions: version-1 tokens (HMAC-SHA256), which servers issued
// before version 2 (SipHash), still decode, and a token's mac is checked
// as its own version has it: a version byte swapped is refused.
func TestTokenVersions(t *testing.T) {
	tk := mustTokens(t, testSecret, 3)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200; i++ {
		c := randomCursor(rng, 3)
		v1, v2 := tk.EncodeHMAC(c, "all"), tk.Encode(c, "all")
		if c.IsZero() {
			continue
		}
		if v1 == v2 {
			t.Fatalf("cursor %v: both versions gave %s", c, v1)
		}
		for _, tok := range []string{v1, v2} {
			got, err := tk.Decode(tok, "all")
			if err != nil || !got.Equal(c) {
				t.Fatalf("token %s of %v: decoded %v, %v", tok, c, got, err)
			}
			raw, _ := base64.RawURLEncoding.DecodeString(tok)
			raw[0] = 3 - raw[0] // 1 <-> 2, the mac unchanged
			_, err = tk.Decode(base64.RawURLEncoding.EncodeToString(raw), "all")
			checkBad(t, "version swapped", err)
		}
	}
	// A known token: the format and the key derivation stay as they are
	// (positions held by clients must decode after an upgrade).
	c := feeds.NewCursor([]feeds.ShardPos{{Seq: 5}, {Seq: 2, Index: 1}, {}})
	for _, k := range []struct{ tok, want string }{
		{tk.EncodeHMAC(c, "all"), knownHMAC},
		{tk.Encode(c, "all"), knownSip},
	} {
		if k.tok != k.want {
			t.Errorf("token %s, want %s", k.tok, k.want)
		}
	}
}

// The known tokens of TestTokenVersions; version 1 is what the codec
// issued before version 2 (taken from that code).
const (
	knownHMAC = "AQMKBQEA8ziA9gQqenchzhNEeZtVNQ"
	knownSip  = "AgMKBQEAsqIXg0Un3fsIevh-U_o61Q"
)
