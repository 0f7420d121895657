package groups

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/dchest/siphash"

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
// The mac covers macDomain | group id (16 bytes) | uvarint len(group) |
// group | uvarint len(member) | member | the bytes before the mac. Version
// 2, issued now: SipHash-2-4 with a 128-bit output, keyed by a key derived
// from the secret (HMAC-SHA256(secret, sipKeyLabel)), as feed tokens are
// (feeds.Tokens: a read signs a token per event, and SipHash is several
// times cheaper). Version 1, still accepted so tokens handed out before
// stay good: HMAC-SHA256(secret, …) truncated. The domain keeps feed
// tokens (same secret) from ever passing here, and the other way round.
const (
	tokenHMAC    = 1
	tokenSip     = 2
	tokenVersion = tokenSip
	macLen       = 16
	macDomain    = "eventlog group position\x00"
	sipKeyLabel  = "eventlog group position siphash key"
	maxTokenLen  = 1 + 4*binary.MaxVarintLen64 + macLen
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// Tokens encodes and checks group position tokens of one keyspace. Safe
// for concurrent use.
type Tokens struct {
	secret []byte
	k0, k1 uint64 // the SipHash key
}

// NewTokens returns the codec keyed by the keyspace's token_secret.
func NewTokens(secret []byte) (*Tokens, error) {
	if len(secret) < feeds.MinSecretLen {
		return nil, fmt.Errorf("groups: token secret of %d bytes, want at least %d", len(secret), feeds.MinSecretLen)
	}
	t := &Tokens{secret: append([]byte(nil), secret...)}
	t.k0, t.k1 = feeds.SipKey(t.secret, sipKeyLabel)
	return t, nil
}

// mac appends the mac of payload to dst, as the payload's version (its
// first byte) has it.
func (t *Tokens) mac(dst []byte, group string, id gocql.UUID, member string, payload []byte) []byte {
	var buf [256]byte // on the stack for the usual names
	in := append(buf[:0], macDomain...)
	in = append(in, id[:]...)
	for _, s := range []string{group, member} {
		in = binary.AppendUvarint(in, uint64(len(s)))
		in = append(in, s...)
	}
	in = append(in, payload...)
	if payload[0] == tokenHMAC {
		h := hmac.New(sha256.New, t.secret)
		h.Write(bytes.Clone(in)) // in, handed to the interface, would move buf to the heap
		return append(dst, h.Sum(nil)[:macLen]...)
	}
	a, b := siphash.Hash128(t.k0, t.k1, in)
	dst = binary.LittleEndian.AppendUint64(dst, a)
	return binary.LittleEndian.AppendUint64(dst, b)
}

// Encode returns p's token.
func (t *Tokens) Encode(p Position) string { return t.encode(p, tokenVersion) }

func (t *Tokens) encode(p Position, version byte) string {
	pos := canon(p.Pos)
	var buf [maxTokenLen]byte
	b := append(buf[:0], version)
	b = binary.AppendUvarint(b, uint64(p.Shard))
	b = binary.AppendUvarint(b, uint64(p.Epoch))
	b = binary.AppendUvarint(b, uint64(pos.Seq))
	b = binary.AppendUvarint(b, uint64(pos.Index))
	b = t.mac(b, p.Group, p.GroupID, p.Member, b)
	var out [80]byte
	return string(tokenEncoding.AppendEncode(out[:0], b))
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
	if payload[0] != tokenHMAC && payload[0] != tokenSip {
		return Position{}, bad
	}
	var mac [macLen]byte
	if !hmac.Equal(sum, t.mac(mac[:0], group, id, member, payload)) {
		return Position{}, bad
	}
	// Authenticated: what follows only fails for a token of another
	// layout signed with the same secret. One position has one spelling,
	// as Encode writes it (feeds.Tokens.Decode holds the same rule):
	// minimal varints, and the log's start as seq 1 (canon).
	d := payload[1:]
	var vs [4]uint64
	for i := range vs {
		v, n := binary.Uvarint(d)
		if n <= 0 || n > 1 && d[n-1] == 0 || v > 1<<62 {
			return Position{}, bad
		}
		vs[i], d = v, d[n:]
	}
	if len(d) != 0 || vs[0] > 1<<31 || vs[2] == 0 || vs[3] > 1<<31 {
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
