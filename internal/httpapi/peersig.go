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

// headerPeerSignature carries "t=<unix seconds>,s=<base64url HMAC-SHA256>"
// over the time, the method, the path and the body.
const headerPeerSignature = "Eventlog-Peer-Signature"

// peerSignatureSkew is how far a signature's time may be from the
// receiver's clock: it bounds a replay of a captured request (forwards
// carry their events' ids, so a replay within it is a duplicate anyway)
// and is wide because instances' clocks disagree.
const peerSignatureSkew = 10 * time.Minute

// PeerKeyer is implemented by stores whose instances forward to each
// other: PeerKey is the key that signs their requests, the same on every
// instance of the keyspace and secret to it.
type PeerKeyer interface {
	PeerKey() []byte
}

// peerMAC is the signature of a request at unix time t.
func peerMAC(key []byte, t int64, method, path string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "eventlog-peer-v1\n%d\n%s %s\n", t, method, path)
	m.Write(body)
	return m.Sum(nil)
}

// PeerSignature is the Eventlog-Peer-Signature value of a request with
// body to path, signed with key at now.
func PeerSignature(key []byte, method, path string, body []byte, now time.Time) string {
	t := now.Unix()
	return "t=" + strconv.FormatInt(t, 10) + ",s=" + base64.RawURLEncoding.EncodeToString(peerMAC(key, t, method, path, body))
}

// checkPeerSignature verifies sig for the request (method, path, body)
// with key at now.
func checkPeerSignature(key []byte, sig, method, path string, body []byte, now time.Time) error {
	if sig == "" {
		return fmt.Errorf("no %s: the internal routes serve other eventlog instances of this keyspace only", headerPeerSignature)
	}
	ts, mac, ok := strings.Cut(sig, ",")
	ts, okT := strings.CutPrefix(ts, "t=")
	mac, okS := strings.CutPrefix(mac, "s=")
	t, err := strconv.ParseInt(ts, 10, 64)
	got, err2 := base64.RawURLEncoding.DecodeString(mac)
	if !ok || !okT || !okS || err != nil || err2 != nil {
		return fmt.Errorf("%s is malformed", headerPeerSignature)
	}
	if d := now.Sub(time.Unix(t, 0)); d > peerSignatureSkew || d < -peerSignatureSkew {
		return fmt.Errorf("%s was made %s from this instance's clock (at most %s): are the instances' clocks set?", headerPeerSignature, d.Round(time.Second), peerSignatureSkew)
	}
	if !hmac.Equal(got, peerMAC(key, t, method, path, body)) {
		return fmt.Errorf("%s does not match: the sender is not an instance of this keyspace", headerPeerSignature)
	}
	return nil
}

// peerBody reads an internal route's body, at most limit bytes, and
// checks that an instance of the keyspace signed it. Refused: 403
// forbidden, before anything else is looked at.
func (s *Server) peerBody(c *echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		return nil, invalidRequest(fmt.Sprintf("the body could not be read (at most %d bytes): %v", limit, err))
	}
	if err := checkPeerSignature(s.peerKey, r.Header.Get(headerPeerSignature), r.Method, r.URL.Path, body, time.Now()); err != nil {
		return nil, newProblem(http.StatusForbidden, CodeForbidden, err.Error())
	}
	return body, nil
}

// internalRoute reports whether c is a request to an internal route.
func internalRoute(c *echo.Context) bool {
	p := c.RouteInfo().Path
	return p == forwardPath || p == flushPath
}
