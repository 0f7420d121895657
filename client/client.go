package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// DefaultBaseURL is where `go run ./cmd/server serve` listens.
const DefaultBaseURL = "http://127.0.0.1:8080"

// DefaultUserAgent is sent when Options.UserAgent is empty.
const DefaultUserAgent = "eventlog-go-client"

// Options configure a Client. Zero fields take the defaults documented on
// each through EnsureDefaults.
type Options struct {
	// BaseURL is the server's root, http or https, without /v1. A path
	// prefix (for a server behind a proxy) is kept. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client on
	// http.DefaultTransport with no overall timeout, because replays stream
	// for as long as they take; bound each call with its context instead.
	// A Timeout set here applies per attempt and a timed-out attempt is
	// retried; it also cuts replays that outlast it (which then resume).
	HTTPClient *http.Client
	// Retry says how failed calls are retried (see RetryPolicy for which
	// failures are).
	Retry RetryPolicy
	// UserAgent is the User-Agent of every request. Default
	// DefaultUserAgent.
	UserAgent string
	// Token is the API key sent as "Authorization: Bearer <token>" with
	// every request; empty sends none (a server with authentication off).
	Token string
	// Compress lets the server gzip its answers (Go's transport asks for
	// it and decodes it). Off by default: answers come plain, because a
	// compressed replay costs the server two to three times the CPU and
	// is slower on a fast network; turn it on over a slow link (it cut a
	// replay's bytes to a fifth).
	Compress bool
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	o.Retry.EnsureDefaults()
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
}

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	u, err := url.Parse(o.BaseURL)
	switch {
	case err != nil:
		return fmt.Errorf("base url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("base url %q: scheme must be http or https", o.BaseURL)
	case u.Host == "":
		return fmt.Errorf("base url %q: no host", o.BaseURL)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("base url %q: no query or fragment allowed", o.BaseURL)
	}
	return o.Retry.Validate()
}

// Client calls one eventlog server. It is safe for concurrent use.
type Client struct {
	base     string // BaseURL without a trailing slash
	hc       *http.Client
	retry    RetryPolicy
	ua       string
	token    string
	compress bool
	// secrets are the member secrets this client's joins were answered,
	// by group and member (groups.go).
	secrets sync.Map
}

// New returns a Client with opts (after EnsureDefaults).
func New(opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("eventlog client: %w", err)
	}
	return &Client{
		base:     strings.TrimRight(opts.BaseURL, "/"),
		hc:       opts.HTTPClient,
		retry:    opts.Retry,
		ua:       opts.UserAgent,
		token:    opts.Token,
		compress: opts.Compress,
	}, nil
}

// Media types of the API.
const (
	mediaJSON    = "application/json"
	mediaNDJSON  = "application/x-ndjson"
	mediaProblem = "application/problem+json"
)

// request is one API call, re-sendable: the body is kept as bytes.
type request struct {
	method      string
	path        string // escaped, from the root: "/v1/streams/…"
	query       url.Values
	body        []byte
	contentType string
	accept      string
	// write marks a request that changes state: when it fails after it may
	// have reached the server, the outcome is unknown.
	write bool
	// secret is a group member's secret (Eventlog-Member-Secret), if any.
	secret string
}

// streamPath is /v1/streams/{stream}/rest… with the id escaped.
func streamPath(stream string, rest ...string) string {
	p := "/v1/streams/" + url.PathEscape(stream)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// send makes one attempt. A 2xx response is returned with its body open
// for the caller to read and close; any other status is read, closed and
// returned as a *Problem; a failed exchange is a *transportError.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.ua)
	if !c.compress {
		// Set, so the transport neither asks for gzip nor decodes.
		req.Header.Set("Accept-Encoding", "identity")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	accept := r.accept
	if accept == "" {
		accept = mediaJSON
	}
	req.Header.Set("Accept", accept+", "+mediaProblem)
	if r.secret != "" {
		req.Header.Set(headerMemberSecret, r.secret)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, err, r.write)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		defer res.Body.Close()
		return nil, problemFrom(res)
	}
	return res, nil
}

// transportErr classifies a failed exchange: once ctx is done, the error
// says so (and is not retried) but still tells an unknown write outcome.
func (c *Client) transportErr(ctx context.Context, err error, write bool) error {
	te := newTransportError(err, write)
	if ctx.Err() == nil {
		return te
	}
	if errors.Is(err, ctx.Err()) {
		if te.maybeApplied {
			return te
		}
		return err
	}
	if te.maybeApplied {
		return fmt.Errorf("%w: %w", ctx.Err(), te)
	}
	return fmt.Errorf("%w: %w", ctx.Err(), err)
}

// call runs r with retries and decodes the JSON of the 2xx response into
// out (nil: the body is discarded). The body is read within the attempt,
// so a response cut short is retried like any failed exchange.
func (c *Client) call(ctx context.Context, r *request, out any) error {
	return c.retry.do(ctx, func() error {
		res, err := c.send(ctx, r)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return c.transportErr(ctx, err, r.write)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("decode %s response: %w", r.path, err)
		}
		return nil
	})
}

// marshalJSON encodes v for a request body: json.RawMessage and []byte are
// taken as JSON text and only checked, anything else goes through
// encoding/json.
func marshalJSON(v any) (json.RawMessage, error) {
	var raw []byte
	switch b := v.(type) {
	case json.RawMessage:
		raw = b
	case []byte:
		raw = b
	default:
		return json.Marshal(v)
	}
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
