// Package auth is eventlog's authentication and authorisation core: API
// keys, their scopes, bearer tokens and the cache that checks them. It
// knows no driver and no HTTP framework: the key store is the KeyStore
// interface (internal/cassandra/keystore implements it), and the HTTP
// layer asks a *Key what it may do.
//
// Invariants:
//   - A token is 256 random bits, shown once when its key is created and
//     stored only as its SHA-256 (HashToken); the final comparison with
//     the stored hash is constant-time.
//   - A scope is ACTION:PATTERN, PATTERN a stream id (or group name) or a
//     prefix ending in '*'. A key may do only what one of its scopes
//     allows; admin allows everything. Feeds: a category feed <c> holds
//     the streams <c> and <c>-…, so reading it needs read on both; the all
//     and type feeds need read:*.
//   - Revocation and expiry take effect on every instance within
//     Authenticator's MaxStale (10s by default): each instance re-reads the
//     keys every Refresh, and refuses every token (ErrKeysUnavailable) when
//     its copy is older than MaxStale, rather than trust a stale one. A
//     read that fails, or panics (recovered and logged with its stack),
//     leaves the copy as it was: one bad key row makes the keys stale,
//     never ends the process.
package auth
