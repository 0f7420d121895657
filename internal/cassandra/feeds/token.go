package feeds

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/eventlog/eventlog/internal/log"
	"github.com/eventlog/eventlog/internal/partition"
)

var (
	// ErrBadToken: a position token this keyspace did not issue for this
	// feed (another feed, another shard count, altered, truncated, made
	// up), or a position that is not in the logs. The HTTP layer answers
	// 400 invalid_position; every such error also carries a
	// *log.ValidationError with that code.
	ErrBadToken = errors.New("bad feed position")
	// ErrFuturePosition: a position past a shard's committed log (beyond
	// last_seq + 1, or inside a row that does not exist). It is also
	// ErrBadToken.
	ErrFuturePosition = fmt.Errorf("%w: past the end of the log", ErrBadToken)
)

// badPosition returns an error matching sentinel (ErrBadToken or
// ErrFuturePosition) and carrying the validation error the HTTP layer
// reports; msg is safe to show to clients.
func badPosition(sentinel error, msg string) error {
	return fmt.Errorf("%w: %w", sentinel, &log.ValidationError{Code: log.CodeInvalidPosition, Message: msg})
}

// Token format, before base64url (no padding):
//
//	version (1 byte) | uvarint shards | per shard: uvarint(seq<<1 | index>0) [uvarint index] | mac (16 bytes)
//
// mac = HMAC-SHA256(secret, macDomain | uvarint len(feed) | feed | the bytes
// before the mac), truncated to 16 bytes. The shard count and the version
// are in the authenticated bytes.
const (
	tokenVersion = 1
	macLen       = 16
	macDomain    = "eventlog feed position\x00"
	// MinSecretLen is the shortest token secret accepted (the migrator
	// writes 32 random bytes).
	MinSecretLen = 16
)

// tokenEncoding is base64url without padding; strict, so one token has
// one spelling.
var tokenEncoding = base64.RawURLEncoding.Strict()

// Tokens encodes cursors as position tokens and checks them, for one
// keyspace (its shard count and token_secret). Safe for concurrent use.
type Tokens struct {
	secret []byte
	shards int
	// macs pools keyed hashes with their scratch space (*macState): a
	// feed read encodes a token per event, and hmac.New per token (two
	// SHA-256 states keyed anew) was a tenth of a catch-up read's CPU; the
	// scratch keeps the bytes hashed off the heap.
	macs sync.Pool
}

// macState is a keyed hash and the buffers a MAC needs.
type macState struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// NewTokens returns the token codec of a keyspace with shards shards and
// token secret secret.
func NewTokens(secret []byte, shards int) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("feeds: token secret of %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if shards < 1 || shards > partition.MaxShards {
		return nil, fmt.Errorf("feeds: %d shards, want 1..%d", shards, partition.MaxShards)
	}
	t := &Tokens{secret: append([]byte(nil), secret...), shards: shards}
	t.macs.New = func() any { return &macState{h: hmac.New(sha256.New, t.secret)} }
	return t, nil
}

// maxTokenLen bounds the length of a token worth decoding.
func (t *Tokens) maxTokenLen() int {
	n := 1 + binary.MaxVarintLen64 + t.shards*2*binary.MaxVarintLen64 + macLen
	return tokenEncoding.EncodedLen(n)
}

// mac appends the MAC of payload for feed to dst.
func (t *Tokens) mac(dst []byte, feed string, payload []byte) []byte {
	m := t.macs.Get().(*macState)
	defer t.macs.Put(m)
	in := append(m.in[:0], macDomain...)
	in = binary.AppendUvarint(in, uint64(len(feed)))
	in = append(in, feed...)
	in = append(in, payload...)
	m.in = in
	m.h.Reset()
	m.h.Write(in)
	return append(dst, m.h.Sum(m.sum[:0])[:macLen]...)
}

// Encode returns the token of c for feed (the feed's path form, e.g.
// "category/user", or any string that names what the position is for).
// The start is the empty token. c must be the zero Cursor or have one
// position per shard (it panics otherwise: a cursor of another keyspace).
func (t *Tokens) Encode(c Cursor, feed string) string {
	if c.IsZero() {
		return ""
	}
	if c.Len() != t.shards {
		panic(fmt.Sprintf("feeds: encode a cursor of %d shards for a keyspace of %d", c.Len(), t.shards))
	}
	// Built on the stack for the usual shard counts: the string is the
	// one allocation.
	var buf [128]byte
	b := append(buf[:0], tokenVersion)
	b = binary.AppendUvarint(b, uint64(t.shards))
	for _, p := range c.pos {
		if p.Index == 0 {
			b = binary.AppendUvarint(b, uint64(p.Seq)<<1)
			continue
		}
		b = binary.AppendUvarint(b, uint64(p.Seq)<<1|1)
		b = binary.AppendUvarint(b, uint64(p.Index))
	}
	b = t.mac(b, feed, b)
	var out [192]byte
	return string(tokenEncoding.AppendEncode(out[:0], b))
}

// Decode returns the cursor of a token Encode made for the same feed; the
// empty token is the start. Anything else is an error matching
// ErrBadToken. Decode checks the token, not the logs: Read refuses a
// cursor past a shard's log (ErrFuturePosition).
func (t *Tokens) Decode(token, feed string) (Cursor, error) {
	if token == "" {
		return Cursor{}, nil
	}
	bad := badPosition(ErrBadToken, "position token is not one this server issued for this feed")
	if len(token) > t.maxTokenLen() {
		return Cursor{}, bad
	}
	b, err := tokenEncoding.DecodeString(token)
	// The decoder skips line breaks: refuse them, one token has one spelling.
	if err != nil || tokenEncoding.EncodedLen(len(b)) != len(token) || len(b) < 2+macLen {
		return Cursor{}, bad
	}
	payload, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, t.mac(nil, feed, payload)) {
		return Cursor{}, bad
	}
	// Authenticated: what follows only fails for a token of another
	// format or layout signed with the same secret.
	d := payload
	if d[0] != tokenVersion {
		return Cursor{}, bad
	}
	d = d[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(d)
		if n <= 0 || n > 1 && d[n-1] == 0 { // malformed or not minimal
			return 0, false
		}
		d = d[n:]
		return v, true
	}
	s, ok := uv()
	if !ok || s != uint64(t.shards) {
		return Cursor{}, bad
	}
	pos := make([]ShardPos, t.shards)
	for i := range pos {
		v, ok := uv()
		if !ok || v>>1 > 1<<62 {
			return Cursor{}, bad
		}
		p := ShardPos{Seq: int64(v >> 1)}
		if v&1 != 0 {
			ix, ok := uv()
			if !ok || ix == 0 || ix > 1<<31 {
				return Cursor{}, bad
			}
			p.Index = int(ix)
		}
		if p.canon() != p {
			return Cursor{}, bad
		}
		pos[i] = p
	}
	if len(d) != 0 {
		return Cursor{}, bad
	}
	c := Cursor{pos: pos}
	if c.IsZero() {
		return Cursor{}, nil
	}
	return c, nil
}
