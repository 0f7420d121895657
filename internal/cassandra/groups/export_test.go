package groups

// EncodeHMAC encodes p as a version-1 token (HMAC-SHA256), as servers
// issued them before version 2.
func (t *Tokens) EncodeHMAC(p Position) string { return t.encode(p, tokenHMAC) }
