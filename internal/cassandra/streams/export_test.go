package streams

// KeysScanned returns how many row keys the store's compactions read.
func (s *Store) KeysScanned() int64 { return s.keysScanned.Load() }
