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
