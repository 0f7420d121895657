package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// Consumer groups (docs/consumer-groups.md): join (and heartbeat), read,
// acknowledge, leave, describe. The routes exist when the store is a
// log.GroupStore.

// maxGroupBody bounds join and ack bodies (16 acks fit many times over).
const maxGroupBody = 64 << 10

// headerMemberSecret carries a member's secret (stores with member
// secrets, log.GroupSecrets): answered by the join that created the
// member, required by its heartbeats, reads, acknowledgements and leave.
const headerMemberSecret = "Eventlog-Member-Secret"

// groupAPI serves the group routes over a log.GroupStore.
type groupAPI struct {
	s     *Server
	store log.GroupStore
}

func (s *Server) groupRoutes(v1 *echo.Group) {
	gs, ok := s.store.(log.GroupStore)
	if !ok {
		return
	}
	g := &groupAPI{s: s, store: gs}
	v1.POST("/groups/:group/members", g.join, limitBody(maxGroupBody))
	v1.GET("/groups/:group/members/:member/events", g.read)
	v1.POST("/groups/:group/members/:member/ack", g.ack, limitBody(maxGroupBody))
	v1.DELETE("/groups/:group/members/:member", g.leave)
	v1.GET("/groups/:group", g.describe)
	if _, ok := gs.(log.GroupDeleter); ok {
		v1.DELETE("/groups/:group", g.delete)
	}
	if _, ok := gs.(log.GroupLister); ok {
		v1.GET("/groups", g.list)
	}
}

// write bounds a state-changing call like an append: detached from the
// client's cancellation, so a hang-up does not leave a conditional write
// half-way from our side.
func (g *groupAPI) write(c *echo.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.Request().Context()), g.s.cfg.AppendTimeout)
}

// decodeStrict decodes one JSON value into v: members are matched
// exactly (case-sensitive), and an unknown or repeated member, invalid
// UTF-8 or trailing data is invalid_json (README, "Errors"), as in an
// append body. A body that could not be read (too large, corrupt
// compression, a broken connection) is that error, also when it shows
// only past the value (a compressed body's checksum is checked at its
// end): ProblemFor answers it without its text.
//
// Why not encoding/json: it matches names case-insensitively and takes
// the last of a repeated member, so {"partition":1,"partition":3} acked
// partition 3 where a proxy or validator reading the first sees 1.
func decodeStrict(r io.Reader, v any) error {
	er := &errReader{r: r}
	dec := jsontext.NewDecoder(er)
	if err := jsonv2.UnmarshalDecode(dec, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		if er.err != nil {
			return er.err
		}
		if errors.Is(err, io.EOF) && dec.InputOffset() == 0 {
			return badJSON("the request body is empty")
		}
		return badJSON("%v", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if er.err != nil {
			return er.err
		}
		return badJSON("trailing data after the JSON value")
	}
	return nil
}

// leaseJSON is one partition lease in a join answer.
type leaseJSON struct {
	Partition  int    `json:"partition"`
	Epoch      int64  `json:"epoch"`
	Checkpoint string `json:"checkpoint"`
	LeaseUntil string `json:"lease_until"`
}

func newLeases(ls []log.Lease) []leaseJSON {
	out := make([]leaseJSON, len(ls))
	for i, l := range ls {
		out[i] = leaseJSON{Partition: l.Partition, Epoch: l.Epoch, Checkpoint: l.Checkpoint, LeaseUntil: formatTime(l.Until)}
	}
	return out
}

// membershipJSON is the answer to a join.
type membershipJSON struct {
	Group      string      `json:"group"`
	Feed       string      `json:"feed"`
	Member     string      `json:"member"`
	Secret     string      `json:"secret,omitempty"`
	LeaseTTLMs int64       `json:"lease_ttl_ms"`
	Members    int         `json:"members"`
	Partitions []leaseJSON `json:"partitions"`
	Revoked    []leaseJSON `json:"revoked"`
}

// join serves POST /v1/groups/{group}/members: join, or heartbeat (the
// same request again). Body {"feed": "category/user", "member": "m-1"};
// without a member id one is generated and returned.
func (g *groupAPI) join(c *echo.Context) error {
	if err := g.s.allow(c, auth.ActionGroup, c.Param("group")); err != nil {
		return err
	}
	if err := requireMediaType(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	var body struct {
		Feed   *string `json:"feed"`
		Member string  `json:"member"`
	}
	if err := decodeStrict(c.Request().Body, &body); err != nil {
		return err
	}
	if body.Feed == nil {
		return &log.ValidationError{Code: log.CodeInvalidFeed, Message: `"feed" is required: all, category/<c> or type/<t>`}
	}
	feed, err := log.ParseFeedPath(*body.Feed)
	if err != nil {
		return err
	}
	if err := g.s.allowFeed(c, feed); err != nil {
		return err
	}
	ctx, cancel := g.write(c)
	defer cancel()
	m, err := g.store.JoinGroup(ctx, log.JoinRequest{Group: c.Param("group"), Feed: feed, Member: body.Member,
		Secret: c.Request().Header.Get(headerMemberSecret)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, membershipJSON{
		Group: m.Group, Feed: m.Feed.String(), Member: m.Member, Secret: m.Secret, LeaseTTLMs: m.LeaseTTL.Milliseconds(),
		Members: m.Members, Partitions: newLeases(m.Partitions), Revoked: newLeases(m.Revoked),
	})
}

// authorize checks a request on an existing group: the key needs the
// group scope for its name (403 whether or not the group exists, as for
// streams) and read access to the feed it follows, looked up only for
// keys that have the first. A group whose feed the key may not read is
// 404 group_not_found, as a missing one is: 403 there would tell a key
// holding the name's scope which of its names are taken, and by groups on
// feeds it cannot read (GET /v1/groups leaves them out too).
func (g *groupAPI) authorize(c *echo.Context) error {
	return g.authorizeGroup(c, false)
}

// authorizeGroup is authorize; gone lets a group without its row through
// (its feed unknown) for a key holding the group's scope: the delete
// that finishes one that failed part way, whose rows left have no feed
// to check and which DeleteGroup answers 404 when there are none.
func (g *groupAPI) authorizeGroup(c *echo.Context, gone bool) error {
	s := g.s
	if err := s.allow(c, auth.ActionGroup, c.Param("group")); err != nil || s.cfg.Auth == nil || keyOf(c).IsAdmin() {
		return err
	}
	feed, err := g.store.GroupFeed(c.Request().Context(), c.Param("group"))
	if gone && errors.Is(err, log.ErrGroupNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if k := keyOf(c); k == nil || !k.CanReadFeed(feed) {
		return fmt.Errorf("group %s: %w", c.Param("group"), log.ErrGroupNotFound)
	}
	return nil
}

// authorizeMember is authorize for a request of one member: on a store
// with member secrets, it must also present the member's secret (403
// invalid_member_secret otherwise), so one group-scoped client cannot
// read, acknowledge or leave as another member.
func (g *groupAPI) authorizeMember(c *echo.Context) error {
	if err := g.authorize(c); err != nil {
		return err
	}
	gs, ok := g.store.(log.GroupSecrets)
	if !ok {
		return nil
	}
	return gs.CheckMember(c.Request().Context(), c.Param("group"), c.Param("member"), c.Request().Header.Get(headerMemberSecret))
}

// partitionsParam parses "partitions=1,5,7" (absent: nil).
func partitionsParam(c *echo.Context) ([]int, error) {
	s, err := valueParam(c.QueryParams(), "partitions")
	if err != nil || s == "" {
		return nil, err
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, invalidRequest("partitions must be a comma-separated list of partition numbers")
		}
		out = append(out, p)
	}
	return out, nil
}

// read serves GET /v1/groups/{group}/members/{member}/events: the events
// of the member's partitions after their checkpoints, in feed order, each
// with its position and partition, and per partition the epoch it was
// read under and the position to acknowledge once its events are handled.
// ?partitions= limits the read to partitions that must all be held (409
// lease_lost otherwise).
func (g *groupAPI) read(c *echo.Context) error {
	if err := g.authorizeMember(c); err != nil {
		return err
	}
	limit, err := intParam(c.QueryParams(), "limit", int64(g.s.cfg.DefaultPageSize), 1)
	if err != nil {
		return err
	}
	parts, err := partitionsParam(c)
	if err != nil {
		return err
	}
	// A feed read under the hood, its page held whole: up to about twice
	// MaxPageBytes, as a feed page, from slots of their own.
	release, err := g.s.acquireGroupRead(c)
	if err != nil {
		return err
	}
	defer release()
	page, err := g.store.ReadGroup(c.Request().Context(), log.GroupRead{
		Group: c.Param("group"), Member: c.Param("member"), Partitions: parts,
		Limit: int(min(limit, int64(g.s.cfg.MaxPageSize))), MaxBytes: g.s.cfg.MaxPageBytes,
	})
	if err != nil {
		return err
	}
	type partRead struct {
		Partition int    `json:"partition"`
		Epoch     int64  `json:"epoch"`
		Next      string `json:"next"`
	}
	prs := make([]partRead, len(page.Partitions))
	for i, pr := range page.Partitions {
		prs[i] = partRead{Partition: pr.Partition, Epoch: pr.Epoch, Next: pr.Next}
	}
	tail, err := json.Marshal(prs)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	buf := make([]byte, 0, 512)
	b.WriteString(`{"events":[`)
	for i := range page.Events {
		if i > 0 {
			b.WriteByte(',')
		}
		buf = appendGroupEvent(buf[:0], &page.Events[i])
		b.Write(buf)
	}
	b.WriteString(`],"partitions":`)
	b.Write(tail)
	b.WriteString(`,"complete_up_to":`)
	b.Write(appendTime(nil, page.CompleteUpTo))
	b.WriteString("}\n")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b.Bytes())
}

// appendGroupEvent appends an event of a group read: the event JSON
// (appendEvent) with its stream, position and partition first.
func appendGroupEvent(b []byte, e *log.GroupEvent) []byte {
	b = append(b, `{"stream":`...)
	b = appendString(b, string(e.Stream))
	b = append(b, `,"position":`...)
	b = appendString(b, e.Position)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(e.Partition), 10)
	b = append(b, ',')
	start := len(b)
	b = appendEvent(b, &e.RecordedEvent)
	return append(b[:start], b[start+1:]...) // drop appendEvent's '{'
}

// ackJSON is one acknowledgement in a request.
type ackJSON struct {
	Partition *int   `json:"partition"`
	Epoch     int64  `json:"epoch"`
	Position  string `json:"position"`
	Release   bool   `json:"release"`
}

// ack serves POST /v1/groups/{group}/members/{member}/ack: one
// acknowledgement or an array of them (one per partition). A partition
// whose lease moved on is refused with 409 lease_lost naming it; the
// others are applied. Repeating an acknowledgement is harmless.
func (g *groupAPI) ack(c *echo.Context) error {
	if err := g.authorizeMember(c); err != nil {
		return err
	}
	if err := requireMediaType(c.Request(), echo.MIMEApplicationJSON); err != nil {
		return err
	}
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err
	}
	var in []ackJSON
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		err = decodeStrict(bytes.NewReader(raw), &in)
	} else {
		in = make([]ackJSON, 1)
		err = decodeStrict(bytes.NewReader(raw), &in[0])
	}
	if err != nil {
		return err
	}
	acks := make([]log.Ack, len(in))
	for i, a := range in {
		if a.Partition == nil {
			return invalidRequest(`every acknowledgement needs "partition" and "epoch"`)
		}
		acks[i] = log.Ack{Partition: *a.Partition, Epoch: a.Epoch, Position: a.Position, Release: a.Release}
	}
	ctx, cancel := g.write(c)
	defer cancel()
	res, err := g.store.AckGroup(ctx, c.Param("group"), c.Param("member"), acks)
	if err != nil {
		return err
	}
	type ackResult struct {
		Partition  int    `json:"partition"`
		Epoch      int64  `json:"epoch"`
		Checkpoint string `json:"checkpoint"`
		Released   bool   `json:"released"`
	}
	out := make([]ackResult, len(res))
	for i, r := range res {
		out[i] = ackResult{Partition: r.Partition, Epoch: r.Epoch, Checkpoint: r.Checkpoint, Released: r.Released}
	}
	return c.JSON(http.StatusOK, map[string]any{"acks": out})
}

// leave serves DELETE /v1/groups/{group}/members/{member}: the member's
// partitions are released at once (acknowledge first: leaving moves no
// checkpoint). 204, also when the member had already left. A member leaves
// with its secret; with ?evict=true an operator removes one (a worker that
// hangs, say) without it, which takes the admin scope besides the group's.
//
// A member that is gone (its row deleted by a leave, an eviction or the
// group's delete, or expired a minute after its leases) leaves again
// without its secret: its row's absence is what the secret check sees, so
// a leave repeated after one that failed part way (the row gone, some
// partitions not released yet) was 403 and those partitions stayed held
// until their leases lapsed. Its leases are stale (they outlive no row of
// a live member, whose row lasts a minute past them): releasing them moves
// no checkpoint and is what a lapse allows anyway.
func (g *groupAPI) leave(c *echo.Context) error {
	evict, err := boolParam(c.QueryParams(), "evict")
	if err != nil {
		return err
	}
	if evict {
		err = g.authorize(c)
		if err == nil {
			err = g.s.allow(c, auth.ActionAdmin, "")
		}
	} else if err = g.authorizeMember(c); errors.Is(err, log.ErrNotMember) {
		err = nil // authorized (authorize passed); gone: leave again
	}
	if err != nil {
		return err
	}
	ctx, cancel := g.write(c)
	defer cancel()
	if err := g.store.LeaveGroup(ctx, c.Param("group"), c.Param("member")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// groupJSON is the answer of GET /v1/groups/{group}.
type groupJSON struct {
	Group      string          `json:"group"`
	Feed       string          `json:"feed"`
	CreatedAt  string          `json:"created_at"`
	Watermark  string          `json:"watermark"`
	Lag        int64           `json:"lag"`
	LagCapped  bool            `json:"lag_capped"`
	Members    []memberJSON    `json:"members"`
	Partitions []partitionJSON `json:"partitions"`
}

type memberJSON struct {
	Member    string `json:"member"`
	ExpiresAt string `json:"expires_at"`
}

type partitionJSON struct {
	Partition  int    `json:"partition"`
	Owner      string `json:"owner"`
	Epoch      int64  `json:"epoch"`
	LeaseUntil string `json:"lease_until,omitempty"`
	Checkpoint string `json:"checkpoint"`
	Lag        int64  `json:"lag"`
	LagCapped  bool   `json:"lag_capped"`
}

// describe serves GET /v1/groups/{group}: feed, live members, partitions
// (owner, epoch, lease end, checkpoint, lag) and the total lag, which it
// also sets as the group's eventlog_group_lag_events gauge.
func (g *groupAPI) describe(c *echo.Context) error {
	if err := g.authorize(c); err != nil {
		return err
	}
	info, err := g.store.DescribeGroup(c.Request().Context(), c.Param("group"))
	if err != nil {
		return err
	}
	out := groupJSON{
		Group: info.Group, Feed: info.Feed.String(), CreatedAt: optionalTime(info.Created), Watermark: formatTime(info.Watermark),
		Lag: info.Lag, LagCapped: info.LagCapped, Members: make([]memberJSON, len(info.Members)),
		Partitions: make([]partitionJSON, len(info.Partitions)),
	}
	for i, m := range info.Members {
		out.Members[i] = memberJSON{Member: m.Member, ExpiresAt: formatTime(m.Expires)}
	}
	for i, p := range info.Partitions {
		out.Partitions[i] = partitionJSON{Partition: p.Partition, Owner: p.Owner, Epoch: p.Epoch, LeaseUntil: optionalTime(p.LeaseUntil),
			Checkpoint: p.Checkpoint, Lag: p.Lag, LagCapped: p.LagCapped}
	}
	return c.JSON(http.StatusOK, out)
}

// delete serves DELETE /v1/groups/{group}: the group goes with its
// members, leases and checkpoints (204); a later join creates it anew.
// Needs the group scope for its name (admin keys have it) and read on the
// group's feed, as every route on a group (authorize: a group whose feed
// the key may not read is 404, as a missing one), and is logged as an
// audit record.
func (g *groupAPI) delete(c *echo.Context) error {
	if err := g.authorizeGroup(c, true); err != nil {
		return err
	}
	ctx, cancel := g.write(c)
	defer cancel()
	if err := g.store.(log.GroupDeleter).DeleteGroup(ctx, c.Param("group")); err != nil {
		return err
	}
	g.s.log.InfoContext(ctx, "audit", "action", "group_deleted", "group", c.Param("group"), "by", principal(c))
	return c.NoContent(http.StatusNoContent)
}
