package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// fastAppender sends appends with fasthttp's client: the load generator
// shares the machine's cores with the server and Cassandra, and net/http's
// client spends about twice its CPU per request (a goroutine handoff each
// way and more allocation), which a server run pays for and the gocql
// baseline does not.
type fastAppender struct {
	c *fasthttp.Client
}

func newFastAppender(conns int) *fastAppender {
	return &fastAppender{c: &fasthttp.Client{
		MaxConnsPerHost:               conns,
		MaxIdleConnDuration:           90 * time.Second,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}}
}

// post sends one append body to stream, as postAppend does.
func (a *fastAppender) post(ctx context.Context, base, stream string, body []byte, want *appendResponse) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer func() { fasthttp.ReleaseRequest(req); fasthttp.ReleaseResponse(resp) }()
	req.SetRequestURI(base + "/v1/streams/" + url.PathEscape(stream) + "/events")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(appendTimeout)
	}
	if err := a.c.DoDeadline(req, resp, deadline); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// fasthttp's deadline can fire just before ctx's: a timeout all the
		// same (its error is not a net.Error, which code looks for).
		if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) {
			return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
		}
		return err
	}
	if st := resp.StatusCode(); st/100 != 2 {
		he := &httpError{status: st}
		_ = json.Unmarshal(resp.Body(), &he.p)
		return he
	}
	if want == nil {
		return nil
	}
	return json.Unmarshal(resp.Body(), want)
}
