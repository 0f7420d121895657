package cassandra

// SetAfterBatch installs a hook told how many appends each applied batch
// committed.
func SetAfterBatch(s *Store, f func(appends int)) { s.afterBatch = f }
