package httpapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/eventlog/eventlog/internal/log"
)

// A page of GET /v1/streams may end, cut by the store's scan cap, on a
// stream the key may not read: its "next" must resume the scan there
// without naming it. Such a next is sealed: cursorPrefix and the stream id
// encrypted (AES-GCM) under a key derived from the peer key, so any
// instance of the keyspace opens it. A next the key may read stays the
// plain stream id (what a client may always pass as after).

// cursorPrefix starts a sealed next; no stream id starts with it.
const cursorPrefix = "~"

// newListCursor returns the AEAD sealing list cursors: keyed from
// peerKey, or from random bytes when there is none (a store without
// peers: its cursors are good on this process only).
func newListCursor(peerKey []byte) (cipher.AEAD, error) {
	secret := peerKey
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("eventlog stream list cursor v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealCursor is the sealed next of a page that ended on id.
func (s *Server) sealCursor(id log.StreamID) string {
	nonce := make([]byte, s.cursor.NonceSize(), s.cursor.NonceSize()+len(id)+s.cursor.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail (Go 1.24+)
	}
	return cursorPrefix + base64.RawURLEncoding.EncodeToString(s.cursor.Seal(nonce, nonce, []byte(id), nil))
}

var errBadCursor = errors.New("not a cursor this server sealed")

// openAfter is the stream a listing starts after: after itself, or the
// stream a sealed next names.
func (s *Server) openAfter(after string) (log.StreamID, error) {
	sealed, ok := strings.CutPrefix(after, cursorPrefix)
	if !ok {
		return log.StreamID(after), nil
	}
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.cursor.NonceSize() {
		return "", errBadCursor
	}
	id, err := s.cursor.Open(nil, b[:s.cursor.NonceSize()], b[s.cursor.NonceSize():], nil)
	if err != nil {
		return "", errBadCursor
	}
	return log.StreamID(id), nil
}
