package feeds

// EncodeHMAC encodes c as a version-1 token (HMAC-SHA256), as servers
// issued them before version 2.
func (t *Tokens) EncodeHMAC(c Cursor, feed string) string { return t.encode(c, feed, tokenHMAC) }

// PoolHits counts the record buffers continuous reads of r took from its
// pool rather than allocated.
func (r *Reader) PoolHits() int64 { return r.bufs.hits.Load() }

// PoisonPool makes r's pool overwrite every buffer it takes back, so an
// event read after its buffer went back shows it at once.
func (r *Reader) PoisonPool() { r.bufs.poison = true }

// SetFetchHook has each fetch of r's reads call f with its shard as it
// starts, on its goroutine (f may panic there).
func (r *Reader) SetFetchHook(f func(shard int)) { r.fetchHook = f }
