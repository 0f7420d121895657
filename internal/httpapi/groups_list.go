package httpapi

import (
	"net/http"

	"github.com/eventlog/eventlog/internal/auth"
	"github.com/eventlog/eventlog/internal/log"
	"github.com/labstack/echo/v5"
)

// Page sizes of GET /v1/groups. The store reads every group row to sort
// them by name (the keyspace holds at most --max-groups, 1,000 by
// default), then one member partition per listed group.
const (
	defaultGroupsLimit = 100
	maxGroupsLimit     = 1000
)

type groupSummaryJSON struct {
	Group     string `json:"group"`
	Feed      string `json:"feed"`
	CreatedAt string `json:"created_at"`
	Members   int    `json:"members"`
}

type groupListJSON struct {
	Groups []groupSummaryJSON `json:"groups"`
	Next   *string            `json:"next"`
}

// list serves GET /v1/groups: the groups in name order, after ?after= (a
// page's next), at most ?limit= of them, each with its feed, creation time
// and live member count (lag, which costs a read of the logs, is in GET
// /v1/groups/{group}). A key sees the groups it could describe: its group
// scopes match the name and it may read the group's feed (admin: all);
// the others are left out, never counted.
func (g *groupAPI) list(c *echo.Context) error {
	q := c.QueryParams()
	after, err := stringParam(q, "after")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", defaultGroupsLimit, 1)
	if err != nil {
		return err
	}
	if limit > maxGroupsLimit {
		return invalidRequest("limit must be at most 1000")
	}
	gq := log.GroupQuery{After: after, Limit: int(limit)}
	if g.s.cfg.Auth != nil {
		k := keyOf(c)
		if k == nil {
			return forbid(c)
		}
		if !k.IsAdmin() {
			gq.Visible = func(group string, feed log.Feed) bool {
				return k.Allows(auth.ActionGroup, group) && k.CanReadFeed(feed)
			}
		}
	}
	page, err := g.store.(log.GroupLister).ListGroups(c.Request().Context(), gq)
	if err != nil {
		return err
	}
	out := groupListJSON{Groups: make([]groupSummaryJSON, len(page.Groups))}
	for i, gs := range page.Groups {
		out.Groups[i] = groupSummaryJSON{Group: gs.Group, Feed: gs.Feed.String(), CreatedAt: formatTime(gs.Created), Members: gs.Members}
	}
	if page.Next != "" {
		out.Next = &page.Next
	}
	return c.JSON(http.StatusOK, out)
}
