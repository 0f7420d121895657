package cassandra

// SetBeforeWrite installs a hook that runs just before each conditional
// append batch is sent.
func SetBeforeWrite(s *Store, f func()) { s.beforeWrite = f }

// SetAfterBatch installs a hook told how many appends each applied batch
// committed.
func SetAfterBatch(s *Store, f func(appends int)) { s.afterBatch = f }
