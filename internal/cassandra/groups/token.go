package groups

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/eventlog/eventlog/internal/cassandra/feeds"
	"github.com/eventlog/eventlog/internal/log"
)

// Position is what a group position token says: event Pos of Shard's log
// is the next to deliver, as read by Member of Group under the lease at
// Epoch.
type Position struct {
	Group   string
	GroupID gocql.UUID // the incarnation of the group's name
	Member  string
	Shard   int
	Epoch   int64
	Pos     feeds.ShardPos
}

// Token format, before base64url (no padding):
//
//	version (1 byte) | uvarint shard | uvarint epoch | uvarint seq | uvarint index | mac (16 bytes)
//
// mac = HMAC-SHA256(secret, macDomain | group id (16 bytes) | uvarint
// len(group) | group | uvarint len(member) | member | the bytes before the
// mac), truncated. The
// domain keeps feed tokens (same secret, feeds.Tokens) from ever passing
// here, and the other way round.
const (
	tokenVersion = 1
	macLen       = 16
	macDomain    = "eventlog group position\x00"
	maxTokenLen  = 1 + 4*binary.MaxVarintLen64 + macLen
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// Tokens encodes and checks group position tokens of one keyspace. Safe
// for concurrent use.
type Tokens struct {
	secret []byte
	// macs pools keyed hashes: a read mints a token per event, and
	// hmac.New per token costs more than the MAC itself.
	macs sync.Pool
}

// NewTokens returns the codec keyed by the keyspace's token_secret.
func NewTokens(secret []byte) (*Tokens, error) {
	if len(secret) < feeds.MinSecretLen {
		return nil, fmt.Errorf("groups: token secret of %d bytes, want at least %d", len(secret), feeds.MinSecretLen)
	}
	return &Tokens{secret: append([]byte(nil), secret...)}, nil
}

func (t *Tokens) mac(group string, id gocql.UUID, member string, payload []byte) []byte {
	h, _ := t.macs.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, t.secret)
	}
	defer t.macs.Put(h)
	h.Reset()
	h.Write([]byte(macDomain))
	h.Write(id[:])
	var n [binary.MaxVarintLen64]byte
	for _, s := range []string{group, member} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	h.Write(payload)
	return h.Sum(nil)[:macLen]
}

// Encode returns p's token.
func (t *Tokens) Encode(p Position) string {
	pos := canon(p.Pos)
	b := make([]byte, 0, maxTokenLen)
	b = append(b, tokenVersion)
	b = binary.AppendUvarint(b, uint64(p.Shard))
	b = binary.AppendUvarint(b, uint64(p.Epoch))
	b = binary.AppendUvarint(b, uint64(pos.Seq))
	b = binary.AppendUvarint(b, uint64(pos.Index))
	b = append(b, t.mac(p.Group, p.GroupID, p.Member, b)...)
	return tokenEncoding.EncodeToString(b)
}

// Decode returns the position of a token Encode made for member of group
// (incarnation id). Anything else is a *log.ValidationError with code
// invalid_position.
func (t *Tokens) Decode(token, group string, id gocql.UUID, member string) (Position, error) {
	bad := &log.ValidationError{Code: log.CodeInvalidPosition, Message: "position token is not one this server handed to this member of this group"}
	if len(token) > tokenEncoding.EncodedLen(maxTokenLen) {
		return Position{}, bad
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || tokenEncoding.EncodedLen(len(b)) != len(token) || len(b) < 5+macLen {
		return Position{}, bad
	}
	payload, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, t.mac(group, id, member, payload)) || payload[0] != tokenVersion {
		return Position{}, bad
	}
	d := payload[1:]
	var vs [4]uint64
	for i := range vs {
		v, n := binary.Uvarint(d)
		if n <= 0 || v > 1<<62 {
			return Position{}, bad
		}
		vs[i], d = v, d[n:]
	}
	if len(d) != 0 || vs[0] > 1<<31 || vs[3] > 1<<31 {
		return Position{}, bad
	}
	return Position{Group: group, GroupID: id, Member: member, Shard: int(vs[0]), Epoch: int64(vs[1]),
		Pos: feeds.ShardPos{Seq: int64(vs[2]), Index: int(vs[3])}}, nil
}

// canon folds the two spellings of a log's start (seq 0 and seq 1, index
// 0) into seq 1.
func canon(p feeds.ShardPos) feeds.ShardPos {
	if p.Seq < 1 {
		p.Seq = 1
	}
	return p
}

// less reports whether a is before b in a shard's log.
func less(a, b feeds.ShardPos) bool {
	a, b = canon(a), canon(b)
	return a.Seq < b.Seq || a.Seq == b.Seq && a.Index < b.Index
}
