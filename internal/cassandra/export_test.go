package cassandra

// SetBeforeWrite installs a hook that runs just before each conditional
// append batch is sent.
func SetBeforeWrite(s *Store, f func()) { s.beforeWrite = f }
