package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
)

// Instances sign what they send each other: the internal routes
// (forwardPath, flushPath) serve only requests signed with the key every
// instance of a keyspace derives from its secret (PeerKeyer), so a client
// cannot call them itself, with whatever its key may append, around the
// public routes' limits.

// headerPeerSignature carries "t=<unix seconds>,h=<body SHA-256>,s=<HMAC-
// SHA256 over the time, the method, the path and the body's digest>".
const headerPeerSignature = "Eventlog-Peer-Signature"

// peerSignatureSkew is how far a signature's time may be from the
// receiver's clock: it bounds a replay of a captured request (forwards
// carry their events' ids, which the owner records as client ids, so a
// replay within it, well inside the idempotency window, is a retry
// answered as a duplicate) and is wide because instances' clocks disagree.
const peerSignatureSkew = 10 * time.Minute

// PeerKeyer is implemented by stores whose instances forward to each
// other: PeerKey is the key that signs their requests, the same on every
// instance of the keyspace and secret to it.
type PeerKeyer interface {
	PeerKey() []byte
}

// peerMAC is the signature of a request at unix time t whose body has
// the SHA-256 digest sum. The digest travels in the header, so a receiver
// checks the signature before it reads the body: a forged request is
// refused without reading up to a forward's size.
func peerMAC(key []byte, t int64, method, path string, sum []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "eventlog-peer-v1\n%d\n%s %s\n", t, method, path)
	m.Write(sum)
	return m.Sum(nil)
}

// PeerSignature is the Eventlog-Peer-Signature value of a request with
// body to path, signed with key at now: "t=<unix seconds>,h=<body
// digest>,s=<signature>", both base64url.
func PeerSignature(key []byte, method, path string, body []byte, now time.Time) string {
	t, sum := now.Unix(), sha256.Sum256(body)
	enc := base64.RawURLEncoding.EncodeToString
	return "t=" + strconv.FormatInt(t, 10) + ",h=" + enc(sum[:]) + ",s=" + enc(peerMAC(key, t, method, path, sum[:]))
}

// checkPeerHeader verifies sig for a request (method, path) with key at
// now, and returns the body digest it vouches for.
func checkPeerHeader(key []byte, sig, method, path string, now time.Time) ([]byte, error) {
	if sig == "" {
		return nil, fmt.Errorf("no %s: the internal routes serve other eventlog instances of this keyspace only", headerPeerSignature)
	}
	parts := strings.Split(sig, ",")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%s is malformed", headerPeerSignature)
	}
	ts, okT := strings.CutPrefix(parts[0], "t=")
	hs, okH := strings.CutPrefix(parts[1], "h=")
	ms, okS := strings.CutPrefix(parts[2], "s=")
	t, err := strconv.ParseInt(ts, 10, 64)
	sum, err2 := base64.RawURLEncoding.DecodeString(hs)
	mac, err3 := base64.RawURLEncoding.DecodeString(ms)
	if !okT || !okH || !okS || err != nil || err2 != nil || err3 != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%s is malformed", headerPeerSignature)
	}
	if d := now.Sub(time.Unix(t, 0)); d > peerSignatureSkew || d < -peerSignatureSkew {
		return nil, fmt.Errorf("%s was made %s from this instance's clock (at most %s): are the instances' clocks set?", headerPeerSignature, d.Round(time.Second), peerSignatureSkew)
	}
	if !hmac.Equal(mac, peerMAC(key, t, method, path, sum)) {
		return nil, fmt.Errorf("%s does not match: the sender is not an instance of this keyspace", headerPeerSignature)
	}
	return sum, nil
}

// checkBody reports whether body has the digest a checked header vouched
// for.
func checkBody(sum, body []byte) error {
	got := sha256.Sum256(body)
	if !hmac.Equal(got[:], sum) {
		return fmt.Errorf("the body does not match its %s", headerPeerSignature)
	}
	return nil
}

// checkPeerSignature verifies sig for the request (method, path, body)
// with key at now.
func checkPeerSignature(key []byte, sig, method, path string, body []byte, now time.Time) error {
	sum, err := checkPeerHeader(key, sig, method, path, now)
	if err != nil {
		return err
	}
	return checkBody(sum, body)
}

// peerBody checks that an instance of the keyspace signed an internal
// route's request — its header before the body is read — and reads the
// body, at most limit bytes. Refused: 403 forbidden, before anything else
// is looked at.
func (s *Server) peerBody(c *echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	sum, err := checkPeerHeader(s.peerKey, r.Header.Get(headerPeerSignature), r.Method, r.URL.Path, time.Now())
	if err != nil {
		return nil, newProblem(http.StatusForbidden, CodeForbidden, err.Error())
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		return nil, invalidRequest(fmt.Sprintf("the body could not be read (at most %d bytes): %v", limit, err))
	}
	if err := checkBody(sum, body); err != nil {
		return nil, newProblem(http.StatusForbidden, CodeForbidden, err.Error())
	}
	return body, nil
}

// internalRoute reports whether c is a request to an internal route.
func internalRoute(c *echo.Context) bool {
	p := c.RouteInfo().Path
	return p == forwardPath || p == flushPath
}
