package cassandra

import (
	"context"

	"github.com/eventlog/eventlog/internal/log"
)

// GroupFeed returns the feed group follows (log.ErrGroupNotFound if no
// member ever joined it). The HTTP layer checks a key's read access to it
// before serving the group; a group's feed never changes, so the store's
// cache of groups answers most calls.
func (s *Store) GroupFeed(ctx context.Context, group string) (log.Feed, error) {
	if _, err := log.ParseGroupName(group); err != nil {
		return log.Feed{}, err
	}
	row, err := s.groupRow(ctx, group, false)
	return row.feed, err
}
