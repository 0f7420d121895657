package feeds

// EncodeHMAC encodes c as a version-1 token (HMAC-SHA256), as servers
// issued them before version 2.
func (t *Tokens) EncodeHMAC(c Cursor, feed string) string { return t.encode(c, feed, tokenHMAC) }
