package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// newHTTPClient returns a keep-alive client that holds one idle connection
// per worker, so a closed loop of n workers reuses n connections instead
// of opening new ones (the default keeps only 2 idle per host). No overall
// timeout: replays stream for as long as they take; appends get theirs
// from ctx.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}}
}

// problem is the part of an RFC 9457 error body the harness reads.
type problem struct {
	Code           string `json:"code"`
	Detail         string `json:"detail"`
	CurrentVersion *int64 `json:"current_version"`
}

// appendResponse is the part of a 201/200 append answer the harness reads.
type appendResponse struct {
	LastVersion int64 `json:"last_version"`
	Duplicate   bool  `json:"duplicate"`
}

// expectedAny marks an append with expected_version "any".
const expectedAny = -1

// encodeAppend appends the JSON body of an append of evs with ids to b.
// Hand-built: the payloads are compact JSON already, and the load
// generator should spend its CPU on little but sending.
func encodeAppend(b []byte, expected int64, ids []uuid.UUID, evs []*payload) []byte {
	b = append(b, `{"expected_version":`...)
	if expected == expectedAny {
		b = append(b, `"any"`...)
	} else {
		b = strconv.AppendInt(b, expected, 10)
	}
	b = append(b, `,"events":[`...)
	for i, p := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = appendUUID(b, ids[i])
		b = append(b, `","type":"`...)
		b = append(b, p.Type...)
		b = append(b, `","data":`...)
		b = append(b, p.Data...)
		if len(p.Metadata) > 0 {
			b = append(b, `,"metadata":`...)
			b = append(b, p.Metadata...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendUUID(b []byte, id uuid.UUID) []byte {
	var buf [36]byte
	const hex = "0123456789abcdef"
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	return append(b, buf[:]...)
}

// httpError is a failed request: its problem code, or a client-side cause.
type httpError struct {
	status int
	p      problem
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.status, e.p.Code, e.p.Detail)
}

// code classifies err for the error table: the problem code of an HTTP
// error, else timeout, canceled or transport.
func code(err error) string {
	var he *httpError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		if he.p.Code == "" {
			return "http_" + strconv.Itoa(he.status)
		}
		return he.p.Code
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport"
}

// postAppend sends one append body to stream and decodes the answer (only
// when want is non-nil; otherwise the body is drained unread).
func postAppend(ctx context.Context, c *http.Client, base, stream string, body []byte, want *appendResponse) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/streams/"+url.PathEscape(stream)+"/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if want == nil {
		return readAnswer(resp, nil) // not a typed nil in an interface
	}
	return readAnswer(resp, want)
}

// readAnswer decodes a 2xx body into want (when set) or a problem into an
// *httpError, and drains the body so the connection is reused.
func readAnswer(resp *http.Response, want any) error {
	defer io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		he := &httpError{status: resp.StatusCode}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&he.p)
		return he
	}
	if want == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(want)
}

// getJSON GETs base+path into want.
func getJSON(ctx context.Context, c *http.Client, base, path string, want any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readAnswer(resp, want)
}

// getBody GETs base+path and returns its body (a problem answer is an
// *httpError).
func getBody(ctx context.Context, c *http.Client, base, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, readAnswer(resp, nil)
	}
	return io.ReadAll(resp.Body)
}

// putJSON PUTs body to base+path; the answer is read into want if set.
func putJSON(ctx context.Context, c *http.Client, base, path string, body []byte, want any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readAnswer(resp, want)
}

// checkServer fails with a hint when no eventlog answers at base.
func checkServer(ctx context.Context, c *http.Client, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := getJSON(ctx, c, base, "/readyz", nil); err != nil {
		return fmt.Errorf("eventlog at %s is not ready (%v); start it with `go run ./cmd/server serve --migrate`", base, err)
	}
	return nil
}
