package httpapi_test

import (
	"strings"
	"testing"
)

// TestStrictBodyReadErrors: a JSON body of the admin and group routes
// that cannot be decompressed is 400 invalid_encoding, as an append's
// is, and its detail does not carry the decompressor's text.
func TestStrictBodyReadErrors(t *testing.T) {
	ts := MustServer(t, nil)
	good := gz(t, []byte(`{"feed":"all","member":"m-1"}`))
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-6] ^= 0xff // the checksum, checked past the value
	for name, body := range map[string][]byte{"Checksum": badCRC, "Truncated": good[:len(good)/2]} {
		t.Run(name, func(t *testing.T) {
			r := ts.Do(t, "POST", "/v1/groups/enc-g/members", body, "Content-Type", "application/json", "Content-Encoding", "gzip")
			p := MustProblem(t, r, 400, "invalid_encoding")
			if d, _ := p["detail"].(string); strings.Contains(d, "gzip") || strings.Contains(d, "EOF") || strings.Contains(d, "checksum") {
				t.Fatalf("detail carries the decompressor's text: %s", r)
			}
		})
	}
}
