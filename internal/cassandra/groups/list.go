package groups

import (
	"context"
	"slices"
	"strings"

	"github.com/eventlog/eventlog/internal/cassandra/cql"
	"github.com/eventlog/eventlog/internal/fanout"
	"github.com/eventlog/eventlog/internal/log"
)

var _ log.GroupLister = (*Store)(nil)

// listConcurrency bounds the member reads of one listing in flight.
const listConcurrency = 8

// ListGroups implements log.GroupLister. shard_groups is keyed by name
// alone, so Cassandra returns it in token order: the listing reads every
// row (the table is capped by MaxGroups, checked on creation, so this is
// at most about that many small rows), sorts them by name and keeps the
// page. Then it reads the members partition of each group of the page,
// listConcurrency at a time, to count the live ones.
func (s *Store) ListGroups(ctx context.Context, q log.GroupQuery) (log.GroupList, error) {
	if q.Limit < 1 {
		return log.GroupList{}, &log.ValidationError{Code: log.CodeInvalidRequest, Message: "limit must be positive"}
	}
	iter := s.o.Session.Query(cqlGroupList).WithContext(ctx).Idempotent(true).Iter()
	var (
		all  []log.GroupSummary
		g    log.GroupSummary
		feed string
	)
	for iter.Scan(&g.Group, &feed, &g.Created) {
		if g.Group <= q.After {
			continue
		}
		f, err := log.ParseFeedPath(feed)
		if err != nil {
			continue // never written by this store: not listed
		}
		g.Feed, g.Created = f, g.Created.UTC()
		if q.Visible == nil || q.Visible(g.Group, g.Feed) {
			all = append(all, g)
		}
	}
	if err := iter.Close(); err != nil {
		return log.GroupList{}, cql.ReadErr("list groups", err)
	}
	slices.SortFunc(all, func(a, b log.GroupSummary) int { return strings.Compare(a.Group, b.Group) })
	var out log.GroupList
	if len(all) > q.Limit {
		all = all[:q.Limit]
		out.Next = all[len(all)-1].Group
	}
	now := s.now(ctx)
	var (
		sem  = make(chan struct{}, listConcurrency)
		errs = make([]error, len(all))
	)
	wg, lctx := fanout.WithContext(ctx) // a read's panic stops the others; Wait raises it
	for i := range all {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			members, err := s.liveMembers(lctx, all[i].Group, now)
			all[i].Members, errs[i] = len(members), err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return log.GroupList{}, err
		}
	}
	out.Groups = all
	return out, nil
}
