package feeds

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dchest/siphash"

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
// The mac covers macDomain | uvarint len(feed) | feed | the bytes before
// the mac, so the version and the shard count are authenticated too.
// Version 2, issued now: SipHash-2-4 with a 128-bit output, keyed by a
// key derived from the secret (HMAC-SHA256(secret, sipKeyLabel)). Version
// 1, still accepted so positions handed out before stay good:
// HMAC-SHA256(secret, …) truncated to 16 bytes. A feed read signs a token
// per event: SipHash takes 27 ns for one, HMAC-SHA256 ~180 ns, about a
// tenth of a catch-up read's CPU. Both are pseudorandom functions keyed
// by a secret the client never sees, so a token cannot be forged or
// altered without the key (a guess passes with probability 2^-128).
const (
	tokenHMAC    = 1
	tokenSip     = 2
	macLen       = 16
	macDomain    = "eventlog feed position\x00"
	sipKeyLabel  = "eventlog feed position siphash key"
	tokenVersion = tokenSip
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
	k0, k1 uint64 // the SipHash key
	shards int
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
	t.k0, t.k1 = SipKey(t.secret, sipKeyLabel)
	return t, nil
}

// SipKey derives a SipHash-2-4 key from secret for one use named by
// label: HMAC-SHA256(secret, label), its first 16 bytes as two
// little-endian words. Distinct labels give unrelated keys, so feed and
// group tokens never share one.
func SipKey(secret []byte, label string) (k0, k1 uint64) {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	k := h.Sum(nil)
	return binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[8:])
}

// maxTokenLen bounds the length of a token worth decoding.
func (t *Tokens) maxTokenLen() int {
	n := 1 + binary.MaxVarintLen64 + t.shards*2*binary.MaxVarintLen64 + macLen
	return tokenEncoding.EncodedLen(n)
}

// macInput appends what a token's mac covers to dst.
func macInput(dst []byte, feed string, payload []byte) []byte {
	dst = append(dst, macDomain...)
	dst = binary.AppendUvarint(dst, uint64(len(feed)))
	dst = append(dst, feed...)
	return append(dst, payload...)
}

// mac appends the mac of payload for feed to dst, as the payload's
// version (its first byte) has it.
func (t *Tokens) mac(dst []byte, feed string, payload []byte) []byte {
	if payload[0] == tokenHMAC {
		h := hmac.New(sha256.New, t.secret)
		h.Write(macInput(nil, feed, payload))
		return append(dst, h.Sum(nil)[:macLen]...)
	}
	// On the stack for the usual feeds and shard counts.
	var buf [256]byte
	a, b := siphash.Hash128(t.k0, t.k1, macInput(buf[:0], feed, payload))
	dst = binary.LittleEndian.AppendUint64(dst, a)
	return binary.LittleEndian.AppendUint64(dst, b)
}

// Encode returns the token of c for feed (the feed's path form, e.g.
// "category/user", or any string that names what the position is for).
// The start is the empty token. c must be the zero Cursor or have one
// position per shard (it panics otherwise: a cursor of another keyspace).
func (t *Tokens) Encode(c Cursor, feed string) string {
	return t.encode(c, feed, tokenVersion)
}

func (t *Tokens) encode(c Cursor, feed string, version byte) string {
	var out [192]byte
	return string(t.appendEncode(out[:0], c, feed, version))
}

// AppendEncode appends Encode(c, feed) to dst: a page's tokens built into
// one buffer cost a few allocations, not one each.
func (t *Tokens) AppendEncode(dst []byte, c Cursor, feed string) []byte {
	return t.appendEncode(dst, c, feed, tokenVersion)
}

func (t *Tokens) appendEncode(dst []byte, c Cursor, feed string, version byte) []byte {
	if c.IsZero() {
		return dst
	}
	if c.Len() != t.shards {
		panic(fmt.Sprintf("feeds: encode a cursor of %d shards for a keyspace of %d", c.Len(), t.shards))
	}
	// Built on the stack for the usual shard counts: the string is the
	// one allocation.
	var buf [128]byte
	b := append(buf[:0], version)
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
	return tokenEncoding.AppendEncode(dst, b)
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
	if payload[0] != tokenHMAC && payload[0] != tokenSip {
		return Cursor{}, bad
	}
	var mac [macLen]byte
	if !hmac.Equal(sum, t.mac(mac[:0], feed, payload)) {
		return Cursor{}, bad
	}
	// Authenticated: what follows only fails for a token of another
	// layout signed with the same secret.
	d := payload[1:]
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
