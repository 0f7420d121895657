package cassandra

// SetAfterBatch installs a hook told how many appends each applied batch
// committed.
func SetAfterBatch(s *Store, f func(appends int)) { s.afterBatch = f }

// SetGroupFault installs a hook that can lose the request or the answer of
// each conditional write on a group partition.
func SetGroupFault(s *Store, f func(op string) (send, answer bool)) { s.groupFault = f }
