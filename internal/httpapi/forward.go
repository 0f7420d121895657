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
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/fanout"
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
	forwardPath = "/internal/v1/appends"
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

// PeerStore is the side of a store other instances call: forwarded
// appends and flushes, signed with its PeerKey.
type PeerStore interface {
	LocalAppender
	LocalFlusher
	PeerKeyer
}

// flushForwarded serves flushPath.
func (s *Server) flushForwarded(c *echo.Context) error {
	if s.peer == nil {
		return newProblem(http.StatusNotImplemented, CodeNotImplemented, "this server does not take flushes")
	}
	body, err := s.peerBody(c, 64<<10)
	if err != nil {
		return err
	}
	var f flushRequest
	if err := json.Unmarshal(body, &f); err != nil {
		return invalidRequest("a flush must be JSON")
	}
	if _, err := log.ParseStreamID(string(f.Stream)); err != nil {
		return err
	}
	// The reading instance passes its client's token on: only someone who
	// may read the stream, or put its snapshots (a snapshot's version is
	// checked against the head the flush writes first), can make its
	// owner write it early. Read alone refused a key of append and
	// snapshot scopes its snapshots through any instance but the owner.
	if !s.permits(c, auth.ActionSnapshot, string(f.Stream)) {
		if err := s.allow(c, auth.ActionRead, string(f.Stream)); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.AppendTimeout)
	defer cancel()
	if err := s.peer.FlushLocal(ctx, f.Stream); err != nil {
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
		bearer, _ := ctx.Value(bearerKey{}).(string)
		switch {
		case p.Code == CodeNotOwner:
			return fmt.Errorf("%w: %s", log.ErrNotOwner, p.Detail)
		case p.Code == CodeUnauthenticated && bearer != "":
			// The owner no longer accepts the client's token (revoked or
			// expired, and this instance's copy of the keys not caught
			// up): the client's answer, as the owner would give it.
			return fmt.Errorf("flush at %s: %w", address, auth.ErrInvalidToken)
		case p.Code == CodeForbidden && bearer != "" && strings.Contains(resp.Header.Get(echo.HeaderWWWAuthenticate), "insufficient_scope"):
			// The client's key may not read the stream there.
			return fmt.Errorf("flush at %s: %w", address, auth.ErrForbidden)
		case p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden:
			// The owner refused this instance: its signature (clocks more
			// than peerSignatureSkew apart, another keyspace's key, a proxy
			// that changed the request). A configuration error between
			// instances, no fault of the client's, which asking again does
			// not cure.
			return fmt.Errorf("flush at %s: %w: %s: %s", address, errPeerRefused, p.Code, p.Detail)
		}
		return fmt.Errorf("flush at %s: %w: %s: %s", address, log.ErrUnavailable, p.Code, p.Detail)
	}
}

// errPeerRefused: another instance refused this one's signed request. 503
// unavailable to the client, like an unreachable owner, but not retried:
// the store retries log.ErrUnavailable until its owner answers, and this
// owner answers the same each time.
var errPeerRefused = errors.New("the owner refused this instance's request (see its log)")

// LocalAppender is implemented by stores that commit only the appends of
// shards they own (the receiving end of forwarding).
type LocalAppender interface {
	AppendLocal(ctx context.Context, req log.AppendRequest) (log.AppendResult, error)
}

// forwarded is an append as one instance forwards it to another: validated
// already, so every event has its id (the forwarding instance made the
// missing ones before it signed the request), with the Authorization value
// of the client's request, which the owner checks again.
type forwarded struct {
	Authorization string              `json:"authorization,omitempty"`
	Stream        log.StreamID        `json:"stream"`
	Expected      log.ExpectedVersion `json:"expected_version"`
	Events        []forwardedEvent    `json:"events"`
}

type forwardedEvent struct {
	ID uuid.UUID `json:"id"`
	// ClientID is always true: owners take every forwarded id for a
	// client's (appendForwardedOne). Sent for owners of earlier builds,
	// which read it, so they record the ids too.
	ClientID bool            `json:"client_id"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// forwardBatch is what one request to forwardPath carries: the appends an
// instance forwards to one owner while its earlier requests to it are in
// flight (Forwarder), answered in the same order.
type forwardBatch struct {
	Appends []forwarded `json:"appends"`
}

type forwardAnswer struct {
	Results []forwardResult `json:"results"`
}

// forwardResult is one append's answer: its result or its problem.
type forwardResult struct {
	Result  *appendResult `json:"result,omitempty"`
	Problem *Problem      `json:"problem,omitempty"`
}

// appendForwarded serves forwardPath: each append of the batch is
// authorised with its own client's key and committed on its own (the
// shard sequencers group them with everything else), all at once.
func (s *Server) appendForwarded(c *echo.Context) error {
	if s.peer == nil {
		return newProblem(http.StatusNotImplemented, CodeNotImplemented, "this server does not take forwarded appends")
	}
	body, err := s.peerBody(c, forwardBatchLimit(s.cfg.MaxBodyBytes))
	if err != nil {
		return err
	}
	var b forwardBatch
	if err := json.Unmarshal(body, &b); err != nil {
		return invalidRequest("forwarded appends must be JSON")
	}
	if len(b.Appends) == 0 || len(b.Appends) > maxForwardBatch {
		return invalidRequest(fmt.Sprintf("a forward carries 1 to %d appends", maxForwardBatch))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.AppendTimeout)
	defer cancel()
	answer := forwardAnswer{Results: make([]forwardResult, len(b.Appends))}
	// A panic of one append is raised by Wait, here, once the others have
	// ended (not cancelled: their outcomes stay known).
	var wg fanout.Group
	for i := range b.Appends {
		wg.Go(func() {
			res, err := s.appendForwardedOne(ctx, s.peer, &b.Appends[i])
			if attrs := s.countCorrupt(err); attrs != nil {
				// Counted and logged here, where the row was read: the
				// forwarding instance has only the problem.
				s.log.ErrorContext(ctx, "forwarded append failed", append(attrs, "error", err)...)
			}
			if err != nil {
				// A copy with the request's id, as every problem has
				// (and as the forwarding instance's client gets it).
				p := *ProblemFor(err)
				p.RequestID = RequestID(ctx)
				answer.Results[i].Problem = &p
				return
			}
			r := newAppendResult(res)
			answer.Results[i].Result = &r
		})
	}
	wg.Wait()
	return c.JSON(http.StatusOK, &answer)
}

// appendForwardedOne commits one forwarded append if its client's key,
// passed on by the forwarding instance, may append to its stream: the
// internal route is no way around the scopes.
func (s *Server) appendForwardedOne(ctx context.Context, la LocalAppender, f *forwarded) (log.AppendResult, error) {
	if _, err := log.ParseStreamID(string(f.Stream)); err != nil {
		return log.AppendResult{}, err
	}
	if s.cfg.Auth != nil {
		k, err := s.cfg.Auth.Authenticate(ctx, f.Authorization)
		if err != nil {
			return log.AppendResult{}, err
		}
		if !k.Allows(auth.ActionAppend, string(f.Stream)) {
			return log.AppendResult{}, auth.ErrForbidden
		}
	}
	// Every forwarded id is recorded and checked as a client's, those the
	// forwarding instance made too: a captured forward sent again while
	// its signature is valid (peerSignatureSkew) is then a retry, answered
	// with the original versions, never a second append. It costs what
	// client ids cost (ids written with the events, looked up when the
	// owner's head does not hold them), on forwarded appends only.
	req := log.AppendRequest{Stream: f.Stream, Expected: f.Expected, Events: make([]log.ProposedEvent, len(f.Events))}
	for i, e := range f.Events {
		req.Events[i] = log.ProposedEvent{ID: e.ID, ClientID: true, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
	}
	req.KeepIDs()
	return la.AppendLocal(ctx, req)
}

// Forwarder returns the function a store calls to send an append to the
// owner of its shard at address (PeerAddress): the owner's answer becomes the
// same core result or error. A request that may have reached the owner but
// got no answer is an unknown outcome, never "not applied".
//
// Appends to one owner share requests: while maxForwardsInFlight
// requests to it are unanswered, the next appends wait and leave together
// (up to maxForwardBatch of them, about Peers.MaxBatchBytes), so an
// instance that forwards half its load pays one round trip per batch, not
// per append.
func Forwarder(p Peers) func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error) {
	var (
		mu     sync.Mutex
		queues = map[string]*forwardQueue{}
	)
	return func(ctx context.Context, address string, req log.AppendRequest) (log.AppendResult, error) {
		it := &forwardItem{ctx: ctx, req: req, done: make(chan forwardOutcome, 1)}
		it.f = forwarded{Stream: req.Stream, Expected: req.Expected, Events: make([]forwardedEvent, len(req.Events))}
		it.f.Authorization, _ = ctx.Value(bearerKey{}).(string)
		// The client's Authorization travels with each append: a valid one
		// may carry any run of spaces after "Bearer", up to the header limit.
		it.size = 256 + len(it.f.Authorization)
		for i, e := range req.Events {
			it.f.Events[i] = forwardedEvent{ID: e.ID, ClientID: true, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
			it.size += 128 + len(e.Type) + len(e.Data) + len(e.Metadata)
		}
		mu.Lock()
		q := queues[address]
		if q == nil {
			q = &forwardQueue{peers: p, address: address}
			queues[address] = q
		}
		mu.Unlock()
		q.submit(it)
		var o forwardOutcome
		select {
		case o = <-it.done:
		case <-ctx.Done():
			if it.state.CompareAndSwap(itemQueued, itemAbandoned) {
				return log.AppendResult{}, fmt.Errorf("forward to %s: %w: %v before it was sent", address, log.ErrUnavailable, ctx.Err())
			}
			if it.state.CompareAndSwap(itemSent, itemLeft) {
				return log.AppendResult{}, fmt.Errorf("forward to %s: %w: %v", address, log.ErrOutcomeUnknown, ctx.Err())
			}
			o = <-it.done // answered meanwhile (itemAnswered): it is in done, or about to be
		}
		fanout.Raise(o.panicked)
		return o.res, o.err
	}
}

// Forwarding limits: appends in one request, and requests in flight to
// one owner (more appends wait and go in the next request).
const (
	maxForwardBatch     = 256
	maxForwardsInFlight = 4
)

// forwardBatchLimit is the largest forward body an owner reads: a batch
// is cut at about maxBody, but its last append may take it past.
func forwardBatchLimit(maxBody int64) int64 { return 2*maxBody + 1<<20 }

type forwardOutcome struct {
	res      log.AppendResult
	err      error
	panicked *fanout.Panic // the request's, raised by the append's caller
}

// An item is queued until a request takes it (sent), or abandoned by a
// caller that gave up first, which a request then skips. A sent item is
// answered (its outcome handed to its caller, who takes it) unless its
// caller left first: then no one takes its outcome.
const (
	itemQueued int32 = iota
	itemSent
	itemAbandoned
	itemAnswered
	itemLeft
)

type forwardItem struct {
	ctx   context.Context
	req   log.AppendRequest
	f     forwarded
	size  int
	state atomic.Int32
	done  chan forwardOutcome // cap 1
}

// answer hands it its outcome, unless it was answered already or its
// caller left; it reports whether its caller takes o.
func (it *forwardItem) answer(o forwardOutcome) bool {
	if !it.state.CompareAndSwap(itemSent, itemAnswered) {
		return false
	}
	it.done <- o // never blocks: one outcome per item, cap 1
	return true
}

// forwardQueue is one owner's: appends waiting, requests in flight.
type forwardQueue struct {
	peers    Peers
	address  string
	mu       sync.Mutex
	waiting  []*forwardItem
	inFlight int
}

func (q *forwardQueue) submit(it *forwardItem) {
	q.mu.Lock()
	q.waiting = append(q.waiting, it)
	q.mu.Unlock()
	q.next()
}

// next starts a request with what waits, if there is room for one.
func (q *forwardQueue) next() {
	q.mu.Lock()
	if q.inFlight >= maxForwardsInFlight {
		q.mu.Unlock()
		return
	}
	var batch []*forwardItem
	size, limit := 0, q.peers.maxBatchBytes()
	for len(q.waiting) > 0 && len(batch) < maxForwardBatch {
		it := q.waiting[0]
		if len(batch) > 0 && size+it.size > limit {
			break
		}
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		if !it.state.CompareAndSwap(itemQueued, itemSent) {
			continue // its caller gave up
		}
		batch = append(batch, it)
		size += it.size
	}
	if len(batch) == 0 {
		q.mu.Unlock()
		return
	}
	q.inFlight++
	q.mu.Unlock()
	go func() {
		// It runs for the appends of several requests, each waiting for
		// its outcome: a panic goes to every one not yet answered, raised
		// on its goroutine (forward), where the request's 500 logs it,
		// and the queue goes on. With none left to take it (all answered
		// before it, or their callers gone), it is logged here.
		if p := fanout.Catch(func() { q.send(batch) }); p != nil {
			raised := false
			for _, it := range batch {
				if it.answer(forwardOutcome{panicked: p}) {
					raised = true
				}
			}
			if !raised {
				q.peers.logger().Error("panic forwarding appends, after their callers were answered or gone",
					"address", q.address, "appends", len(batch), "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
			}
		}
		q.mu.Lock()
		q.inFlight--
		q.mu.Unlock()
		q.next()
	}()
}

// send forwards batch in one request and hands each append its answer.
func (q *forwardQueue) send(batch []*forwardItem) {
	b := forwardBatch{Appends: make([]forwarded, len(batch))}
	for i, it := range batch {
		b.Appends[i] = it.f
	}
	fail := func(err error) {
		for _, it := range batch {
			it.answer(forwardOutcome{err: err})
		}
	}
	body, err := marshalForward(&b)
	if err != nil {
		fail(err)
		return
	}
	// The request outlives any one client: the first append's context
	// gives it its values (the bearer the owner's middleware checks,
	// tracing), the peers' client its timeout.
	ctx := context.WithoutCancel(batch[0].ctx)
	resp, err := q.peers.post(ctx, q.address, forwardPath, body)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && errors.Is(err, syscall.ECONNREFUSED) {
			// Its listener closed (stopping, handing its shards over) or
			// its process gone: the append waits for the owner read next.
			fail(fmt.Errorf("forward to %s: %w: %v", q.address, log.ErrOwnerUnreachable, err))
			return
		}
		if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, errNotSent) {
			fail(fmt.Errorf("forward to %s: %w: %v", q.address, log.ErrUnavailable, err))
			return
		}
		fail(fmt.Errorf("forward to %s: %w: %v", q.address, log.ErrOutcomeUnknown, err))
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(batch))<<20))
	if err != nil {
		fail(fmt.Errorf("forward to %s: %w: %v", q.address, log.ErrOutcomeUnknown, err))
		return
	}
	if resp.StatusCode != http.StatusOK {
		var p Problem
		if json.Unmarshal(raw, &p) != nil || p.Code == "" {
			fail(fmt.Errorf("forward to %s: %w: status %d", q.address, log.ErrOutcomeUnknown, resp.StatusCode))
			return
		}
		if p.Code == CodeForbidden {
			// The request itself refused (its signature): nothing of it was
			// looked at, and it is no fault of the clients'.
			fail(fmt.Errorf("forward to %s: %w: the owner refused this instance: %s", q.address, log.ErrUnavailable, p.Detail))
			return
		}
		if p.Status == http.StatusBadRequest || p.Status == http.StatusRequestEntityTooLarge {
			// The batch refused as a whole (unreadable, too large) before any
			// append of it was looked at: not applied, and not the input of
			// the clients whose appends it carries (each one's own problems
			// come back in its result).
			fail(fmt.Errorf("forward to %s: %w: the owner refused the request: %s: %s", q.address, log.ErrUnavailable, p.Code, p.Detail))
			return
		}
		for _, it := range batch {
			it.answer(forwardOutcome{err: p.coreError(it.req)})
		}
		return
	}
	var a forwardAnswer
	if err := json.Unmarshal(raw, &a); err != nil || len(a.Results) != len(batch) {
		fail(fmt.Errorf("forward to %s: %w: bad answer (%d results for %d appends): %v", q.address, log.ErrOutcomeUnknown, len(a.Results), len(batch), err))
		return
	}
	for i, it := range batch {
		switch r := a.Results[i]; {
		case r.Result != nil:
			t, _ := time.Parse(timeLayout, r.Result.Time)
			it.answer(forwardOutcome{res: log.AppendResult{Stream: r.Result.Stream, FirstVersion: r.Result.FirstVersion,
				LastVersion: r.Result.LastVersion, Events: r.Result.Events, Time: t, Duplicate: r.Result.Duplicate}})
		case r.Problem != nil:
			it.answer(forwardOutcome{err: r.Problem.coreError(it.req)})
		default:
			it.answer(forwardOutcome{err: fmt.Errorf("forward to %s: %w: an empty answer", q.address, log.ErrOutcomeUnknown)})
		}
	}
}

// marshalForward encodes b without HTML escaping: json.Marshal would
// rewrite '<', '>', '&', U+2028 and U+2029 in the events' raw data and
// metadata as \u escapes, and the owner would store other bytes (up to six
// times as many) than it stores for the same append sent to it directly.
func marshalForward(b *forwardBatch) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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
	case CodeForbidden:
		// The owner checks the client's key before it commits anything.
		return fmt.Errorf("%w: %s", auth.ErrForbidden, p.Detail)
	case CodeUnauthenticated:
		return fmt.Errorf("%w: %s", auth.ErrInvalidToken, p.Detail)
	case CodeDataCorrupt:
		// The owner read a corrupt row before it decided the append (a
		// stream's head, or the stored events its retry check compares):
		// an owner answers data_corrupt only for an append it did not
		// commit (a committed one is answered with its versions). The
		// client gets the owner's problem, which names the row.
		return fmt.Errorf("%w: %w", log.ErrDataCorrupt, newProblem(http.StatusInternalServerError, CodeDataCorrupt, p.Detail))
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
	// MaxBatchBytes is about the most payload one forward request
	// carries; default 4 MiB (keep it at most the owners' MaxBodyBytes).
	MaxBatchBytes int
	// Key returns the key requests are signed with (the store's PeerKey,
	// once it is open); nothing is sent without one.
	Key func() []byte
	// Logger logs a panic forwarding appends that no caller is left to
	// raise (Forwarder). Default: slog.Default().
	Logger *slog.Logger
}

func (p Peers) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p Peers) maxBatchBytes() int {
	if p.MaxBatchBytes > 0 {
		return p.MaxBatchBytes
	}
	return 4 << 20
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
	var key []byte
	if p.Key != nil {
		key = p.Key()
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: this instance has no peer key yet", errNotSent)
	}
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
	hr.Header.Set(headerPeerSignature, PeerSignature(key, http.MethodPost, path, body, time.Now()))
	if bearer, _ := ctx.Value(bearerKey{}).(string); bearer != "" {
		hr.Header.Set(echo.HeaderAuthorization, bearer)
	}
	// A redirect is never followed: the body carries the clients' bearer
	// tokens and the request is signed, and a 307 or 308 would send both
	// wherever it points (over plain HTTP too, whatever RequireTLS checked
	// of the first address). An instance never redirects: whatever answered
	// one is no instance of the keyspace (a stale address now served by
	// something else) and did not act on the request.
	cl := *p.Client
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.Do(hr)
	if err != nil && handshakeFailed(err) {
		return nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	if err == nil && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s answered %d, a redirect (not followed): no eventlog instance serves that address", errNotSent, address, resp.StatusCode)
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
