package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// tokenPrefix marks eventlog tokens, so secret scanners and people can
// recognise one.
const tokenPrefix = "evl_"

// tokenBytes is the randomness of a token: 256 bits.
const tokenBytes = 32

// maxTokenLen bounds what ParseAuthorization accepts; tokens are 47
// characters.
const maxTokenLen = 128

// NewToken returns a fresh token and its hash.
func NewToken() (token string, hash [sha256.Size]byte, err error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", hash, err
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token. A plain SHA-256 suffices: the
// token has 256 random bits, so there is nothing to brute-force that a
// slow, salted hash would protect.
func HashToken(token string) [sha256.Size]byte {
	return sha256.Sum256([]byte(token))
}

// ParseAuthorization returns the token of an "Authorization: Bearer
// <token>" header value: ErrNoCredentials when the value is empty,
// ErrInvalidToken when it is not a bearer token of token characters
// (base64url and '_') of a sane length.
func ParseAuthorization(h string) (string, error) {
	if h == "" {
		return "", ErrNoCredentials
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrInvalidToken
	}
	token = strings.TrimLeft(token, " ")
	if len(token) == 0 || len(token) > maxTokenLen {
		return "", ErrInvalidToken
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", ErrInvalidToken
		}
	}
	return token, nil
}
