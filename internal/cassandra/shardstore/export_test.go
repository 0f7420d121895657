package shardstore

// SetStateHooks makes ReadState call afterBuckets once it has read the
// bucket index and beforeSnapshot before it reads the newest snapshot
// (both on every call; nil funcs: none).
func SetStateHooks(s *Store, afterBuckets, beforeSnapshot func()) {
	if afterBuckets == nil && beforeSnapshot == nil {
		s.stateHooks = nil
		return
	}
	noop := func() {}
	if afterBuckets == nil {
		afterBuckets = noop
	}
	if beforeSnapshot == nil {
		beforeSnapshot = noop
	}
	s.stateHooks = &stateHooks{afterBuckets: afterBuckets, beforeSnapshot: beforeSnapshot}
}

// SetReadHook makes ReadStream call afterEmpty after each read that found
// nothing in its range, before it reads the head (nil: none).
func SetReadHook(s *Store, afterEmpty func()) {
	s.readHooks = nil
	if afterEmpty != nil {
		s.readHooks = &readHooks{afterEmpty: afterEmpty}
	}
}
