package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/eventlog/eventlog/client"
)

// Exit codes: what a script can branch on.
const (
	exitOK           = 0 // done
	exitUsage        = 1 // bad command line, flags, local input or TLS set-up (the server's certificate does not verify); nothing was sent
	exitNotFound     = 2 // 404: stream, snapshot, group or route not found
	exitConflict     = 3 // 409: wrong expected version, idempotency conflict, lease lost, group feed mismatch
	exitUnavailable  = 4 // the server is unreachable, unavailable (503), busy (429) or failing (5xx): try again later
	exitInvalid      = 5 // the server refused the request as invalid (400, 413, 415, 422)
	exitUnknown      = 6 // a write's outcome is unknown: retrying with the same event ids is safe
	exitUnauthorized = 7 // 401 or 403 (servers with authentication)
)

// apiError marks an error of a call to the server; any other error is a
// usage error (exit 1).
type apiError struct{ err error }

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

// api wraps a client error as an apiError (nil stays nil).
func api(err error) error {
	if err == nil {
		return nil
	}
	return &apiError{err}
}

// exitCode maps the error of a command to its exit code.
func exitCode(err error) int {
	var ae *apiError
	if err == nil {
		return exitOK
	}
	if !errors.As(err, &ae) {
		return exitUsage
	}
	// A server certificate that does not verify: the request was not
	// sent, and trying again later cannot help (a CA to trust, a host
	// name to fix: SSL_CERT_FILE, --url).
	if certificateError(err) {
		return exitUsage
	}
	// Before any status: a write that failed in transit matches
	// ErrOutcomeUnknown without a 504.
	if errors.Is(err, client.ErrOutcomeUnknown) {
		return exitUnknown
	}
	var p *client.Problem
	if !errors.As(err, &p) {
		return exitUnavailable // transport: refused, reset, timed out
	}
	switch {
	case p.Status == http.StatusNotFound:
		return exitNotFound
	case p.Status == http.StatusConflict:
		return exitConflict
	case p.Status == http.StatusUnauthorized, p.Status == http.StatusForbidden:
		return exitUnauthorized
	case p.Status == http.StatusTooManyRequests:
		// rate_limited, too_many_long_reads, too_many_subscriptions: the
		// request is sound, the server wants it later (Retry-After).
		return exitUnavailable
	case p.Status >= 400 && p.Status < 500:
		return exitInvalid
	}
	return exitUnavailable
}

// certificateError reports whether err is the server's certificate failing
// verification (unknown authority, wrong host name, expired).
func certificateError(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
