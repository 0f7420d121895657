package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
)

// Forwarding: an instance that receives an append for a shard another
// instance owns sends it to the owner over HTTP, or HTTPS when the owner
// serves it (Peers), once (docs/design-write-path.md).
// The owner serves it on an internal route and commits it only if it still
// owns the shard: a forwarded append is never forwarded again.

// forwardPath is the owner's route for forwarded appends; flushPath the
// one that writes a stream's committed tail before another instance reads
// the stream.
const (
	forwardPath = "/internal/v1/append"
	flushPath   = "/internal/v1/flush"
)

// LocalFlusher is implemented by stores whose shard owners answer appends
// before the stream partitions hold them: FlushLocal writes a stream's
// committed tail if this instance owns its shard.
type LocalFlusher interface {
	FlushLocal(ctx context.Context, stream log.StreamID) error
}

type flushRequest struct {
	Stream log.StreamID `json:"stream"`
}

// flushForwarded serves flushPath.
func (s *Server) flushForwarded(c *echo.Context) error {
	lf, ok := s.store.(LocalFlusher)
	if !ok {
		return newProblem(http.StatusNotImplemented, CodeNotImplemented, "this server does not take flushes")
	}
	var f flushRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err := dec.Decode(&f); err != nil {
		return invalidRequest("a flush must be JSON")
	}
	if _, err := log.ParseStreamID(string(f.Stream)); err != nil {
		return err
	}
	// The reading instance passes its client's token on: only someone who
	// may read the stream can make its owner write it early.
	if err := s.allow(c, auth.ActionRead, string(f.Stream)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.AppendTimeout)
	defer cancel()
	if err := lf.FlushLocal(ctx, f.Stream); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// FlushForwarder returns the function a store calls to have the owner at
// address write stream's committed tail before it reads the stream.
func FlushForwarder(p Peers) func(ctx context.Context, address string, stream log.StreamID) error {
	return func(ctx context.Context, address string, stream log.StreamID) error {
		body, err := json.Marshal(flushRequest{Stream: stream})
		if err != nil {
			return err
		}
		resp, err := p.post(ctx, address, flushPath, body)
		if err != nil {
			return fmt.Errorf("flush at %s: %w: %v", address, log.ErrUnavailable, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("flush at %s: %w: %v", address, log.ErrUnavailable, err)
		}
		if resp.StatusCode == http.StatusNoContent {
			return nil
		}
		var p Problem
		if json.Unmarshal(raw, &p) != nil || p.Code == "" {
			return fmt.Errorf("flush at %s: %w: status %d", address, log.ErrUnavailable, resp.StatusCode)
		}
		if p.Code == CodeNotOwner {
			return fmt.Errorf("%w: %s", log.ErrNotOwner, p.Detail)
		}
		return fmt.Errorf("flush at %s: %w: %s: %s", address, log.ErrUnavailable, p.Code, p.Detail)
	}
}

// LocalAppender is implemented by stores that commit only the appends of
// shards they own (the receiving end of forwarding).
type LocalAppender interface {
	AppendLocal(ctx context.Context, req log.AppendRequest) (log.AppendResult, error)
}

// forwarded is an append as one instance forwards it to another: validated
// already, with each id's origin (client or server) kept.
type forwarded struct {
	Stream   log.StreamID        `json:"stream"`
	Expected log.ExpectedVersion `json:"expected_version"`
	Events   []forwardedEvent    `json:"events"`
}

type forwardedEvent struct {
	ID       uuid.UUID       `json:"id"`
	ClientID bool            `json:"client_id"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// appendForwarded serves forwardPath.
func (s *Server) appendForwarded(c *echo.Context) error {
	la, ok := s.store.(LocalAppender)
	if !ok {
		return newProblem(http.StatusNotImplemented, CodeNotImplemented, "this server does not take forwarded appends")
	}
	var f forwarded
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.MaxBodyBytes))
	if err := dec.Decode(&f); err != nil {
		return invalidRequest("a forwarded append must be JSON")
	}
	// The forwarding instance passes the client's bearer token on
	// (Forwarder): the owner checks it as if the client had come here, so
	// the internal route is no way around the scopes.
	if _, err := log.ParseStreamID(string(f.Stream)); err != nil {
		return err
	}
	if err := s.allow(c, auth.ActionAppend, string(f.Stream)); err != nil {
		return err
	}
	req := log.AppendRequest{Stream: f.Stream, Expected: f.Expected, Events: make([]log.ProposedEvent, len(f.Events))}
	for i, e := range f.Events {
		req.Events[i] = log.ProposedEvent{ID: e.ID, ClientID: e.ClientID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
	}
	req.KeepIDs()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.AppendTimeout)
	defer cancel()
	res, err := la.AppendLocal(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newAppendResult(res))
}

// Forwarder returns the function a store calls to send an append to the
// owner of its shard at address (PeerAddress): the owner's answer becomes the
// same core result or error. A request that may have reached the owner but
// got no answer is an unknown outcome, never "not applied".
func Forwarder(p Peers) func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error) {
	return func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error) {
		f := forwarded{Stream: req.Stream, Expected: req.Expected, Events: make([]forwardedEvent, len(req.Events))}
		for i, e := range req.Events {
			f.Events[i] = forwardedEvent{ID: e.ID, ClientID: e.ClientID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
		}
		body, err := json.Marshal(&f)
		if err != nil {
			return log.AppendResult{}, err
		}
		resp, err := p.post(ctx, address, forwardPath, body)
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, errNotSent) {
				return log.AppendResult{}, fmt.Errorf("forward to %s: %w: %v", address, log.ErrUnavailable, err)
			}
			return log.AppendResult{}, fmt.Errorf("forward to %s: %w: %v", address, log.ErrOutcomeUnknown, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return log.AppendResult{}, fmt.Errorf("forward to %s: %w: %v", address, log.ErrOutcomeUnknown, err)
		}
		if resp.StatusCode == http.StatusOK {
			var r appendResult
			if err := json.Unmarshal(raw, &r); err != nil {
				return log.AppendResult{}, fmt.Errorf("forward to %s: %w: bad answer: %v", address, log.ErrOutcomeUnknown, err)
			}
			t, _ := time.Parse(timeLayout, r.Time)
			return log.AppendResult{Stream: r.Stream, FirstVersion: r.FirstVersion, LastVersion: r.LastVersion,
				Events: r.Events, Time: t, Duplicate: r.Duplicate}, nil
		}
		var p Problem
		if json.Unmarshal(raw, &p) != nil || p.Code == "" {
			return log.AppendResult{}, fmt.Errorf("forward to %s: %w: status %d", address, log.ErrOutcomeUnknown, resp.StatusCode)
		}
		return log.AppendResult{}, p.coreError(req)
	}
}

// coreError turns a problem an owner answered back into the core error it
// came from.
func (p *Problem) coreError(req log.AppendRequest) error {
	switch p.Code {
	case CodeWrongExpectedVersion:
		cur := int64(0)
		if p.CurrentVersion != nil {
			cur = *p.CurrentVersion
		}
		return &log.WrongExpectedVersionError{Stream: req.Stream, Expected: req.Expected, Current: cur}
	case CodeIdempotencyConflict:
		return fmt.Errorf("%w: %s", log.ErrIdempotencyConflict, p.Detail)
	case CodeNotOwner:
		return fmt.Errorf("%w: %s", log.ErrNotOwner, p.Detail)
	case CodeUnavailable:
		return fmt.Errorf("%w: %s", log.ErrUnavailable, p.Detail)
	case CodeOutcomeUnknown:
		return fmt.Errorf("%w: %s", log.ErrOutcomeUnknown, p.Detail)
	}
	if p.Status == http.StatusBadRequest || p.Status == http.StatusRequestEntityTooLarge {
		return &log.ValidationError{Code: p.Code, Message: p.Detail}
	}
	// Anything else (500, a proxy's answer): the owner may have written it.
	return fmt.Errorf("%w: %s: %s", log.ErrOutcomeUnknown, p.Code, p.Detail)
}

// Peers is how an instance reaches the other instances' internal routes.
type Peers struct {
	// Client sends the requests; its transport's TLS configuration
	// verifies the peers' certificates.
	Client *http.Client
	// RequireTLS refuses peers that advertise a plain-HTTP address: an
	// instance that serves HTTPS never sends its clients' tokens in the
	// clear.
	RequireTLS bool
}

// errNotSent marks a request to a peer that was refused before any of it
// was sent (plain HTTP under RequireTLS, a failed TLS handshake): the
// owner cannot have acted on it.
var errNotSent = errors.New("request not sent")

// PeerAddress is the address an instance advertises to the others for
// host:port: "https://host:port" when it serves HTTPS, host:port (plain
// HTTP, as instances before TLS advertised) otherwise.
func PeerAddress(hostport string, https bool) string {
	if https {
		return "https://" + hostport
	}
	return hostport
}

// post sends body to the internal route path of the instance at address
// (PeerAddress), with the bearer token of the client whose request this is
// (in ctx).
func (p Peers) post(ctx context.Context, address, path string, body []byte) (*http.Response, error) {
	base := address
	switch {
	case strings.HasPrefix(address, "https://"):
	case strings.HasPrefix(address, "http://"), !strings.Contains(address, "://"):
		if p.RequireTLS {
			return nil, fmt.Errorf("%w: the instance at %s does not serve HTTPS, and this one does not send tokens in the clear", errNotSent, address)
		}
		base = "http://" + strings.TrimPrefix(address, "http://")
	default:
		return nil, fmt.Errorf("%w: unknown scheme in peer address %q", errNotSent, address)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	hr.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if bearer, _ := ctx.Value(bearerKey{}).(string); bearer != "" {
		hr.Header.Set(echo.HeaderAuthorization, bearer)
	}
	resp, err := p.Client.Do(hr)
	if err != nil && handshakeFailed(err) {
		return nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	return resp, err
}

// handshakeFailed reports a TLS handshake that did not complete: the
// peer's certificate did not verify, the peer refused ours, or it does not
// speak TLS. A request is written only after the handshake.
func handshakeFailed(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
