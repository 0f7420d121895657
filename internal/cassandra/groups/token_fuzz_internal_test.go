package groups

import (
	"errors"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

// FuzzDecodeSignedToken feeds Decode payloads signed with the keyspace's
// key, which FuzzTokenDecode's inputs never get past (a mac cannot be
// guessed): what follows the mac check, the part Decode trusts, must
// still never panic, refuse only with invalid_position, and accept only
// the one spelling Encode gives a position.
func FuzzDecodeSignedToken(f *testing.F) {
	tk, err := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	id := gocql.UUID{1, 2, 3}
	for _, p := range []Position{
		{Shard: 3, Epoch: 7, Pos: feeds.ShardPos{Seq: 1234, Index: 5}},
		{Shard: 0, Epoch: 1, Pos: feeds.ShardPos{Seq: 1}},
	} {
		for _, v := range []byte{tokenHMAC, tokenSip} {
			p.Group, p.GroupID, p.Member = "g", id, "m"
			b, _ := tokenEncoding.DecodeString(tk.encode(p, v))
			f.Add(b[:len(b)-macLen])
		}
	}
	f.Add([]byte{tokenSip, 1, 1, 0, 0})       // seq 0: the log's start spelled as Encode does not
	f.Add([]byte{tokenSip, 0x81, 0, 1, 1, 0}) // a non-minimal varint
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 || len(payload) > 64 {
			return
		}
		tok := tokenEncoding.EncodeToString(tk.mac(payload, "g", id, "m", payload))
		p, err := tk.Decode(tok, "g", id, "m")
		if err != nil {
			var ve *log.ValidationError
			if !errors.As(err, &ve) || ve.Code != log.CodeInvalidPosition {
				t.Fatalf("err = %v, want invalid_position", err)
			}
			return
		}
		if again := tk.encode(p, payload[0]); again != tok {
			t.Fatalf("accepted %x as %+v, which encodes as %s, not %s", payload, p, again, tok)
		}
	})
}
