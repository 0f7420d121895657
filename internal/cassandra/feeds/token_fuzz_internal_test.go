package feeds

import (
	"errors"
	"testing"
)

// FuzzDecodeSignedToken feeds Decode payloads signed with the keyspace's
// key, which FuzzDecodeToken's inputs never get past (a mac cannot be
// guessed): what follows the mac check, the part Decode trusts, must
// still never panic, refuse only with ErrBadToken, and accept only the
// one spelling Encode gives a cursor.
func FuzzDecodeSignedToken(f *testing.F) {
	tk, err := NewTokens([]byte("0123456789abcdef0123456789abcdef"), 4)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []Cursor{
		NewCursor([]ShardPos{{Seq: 5}, {Seq: 2, Index: 1}, {}, {Seq: 1 << 40, Index: 1 << 31}}),
		NewCursor([]ShardPos{{}, {}, {}, {Seq: 2}}),
	} {
		for _, v := range []byte{tokenHMAC, tokenSip} {
			b, _ := tokenEncoding.DecodeString(tk.encode(c, "all", v))
			f.Add(b[:len(b)-macLen], "all")
		}
	}
	f.Add([]byte{tokenSip, 4, 0, 0, 0, 0}, "category/user") // the start spelled out
	f.Add([]byte{tokenSip, 4, 3, 0x80, 0, 0, 0}, "all")     // an index of 0
	f.Fuzz(func(t *testing.T, payload []byte, feed string) {
		if len(payload) == 0 || len(payload) > 256 {
			return
		}
		tok := tokenEncoding.EncodeToString(tk.mac(payload, feed, payload))
		c, err := tk.Decode(tok, feed)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("err = %v, want ErrBadToken", err)
			}
			return
		}
		if c.IsZero() {
			return // the start spelled out: Encode gives it as ""
		}
		if again := tk.encode(c, feed, payload[0]); again != tok {
			t.Fatalf("accepted %x as %v, which encodes as %s, not %s", payload, c, again, tok)
		}
	})
}
