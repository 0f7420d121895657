package cassandra

import "github.com/eventlog/eventlog/internal/log"

var _ log.Watcher = (*Store)(nil)

// Watch implements log.Watcher: woken after each commit by this instance.
func (s *Store) Watch(stream log.StreamID) (<-chan struct{}, func()) {
	return s.watchers.Watch(stream)
}
