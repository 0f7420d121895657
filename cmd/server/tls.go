package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckEvery is how often a handshake may look at the certificate
// files for a change.
const certCheckEvery = time.Second

// certReloader serves the certificate in certFile/keyFile and re-reads it
// when either file's modification time changes (renewed by certbot or a
// secret mount), without a restart. A new pair that fails to load is
// logged and the previous one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
}

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: logger}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// load reads the pair; r.mu is held or r is not shared yet.
func (r *certReloader) load() error {
	certMod, keyMod := modTime(r.certFile), modTime(r.keyFile)
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	r.cert, r.certMod, r.keyMod = &cert, certMod, keyMod
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		if !modTime(r.certFile).Equal(r.certMod) || !modTime(r.keyFile).Equal(r.keyMod) {
			if err := r.load(); err != nil {
				r.log.Error("TLS certificate changed but does not load; serving the previous one", "error", err)
			} else {
				r.log.Info("TLS certificate reloaded", "file", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// serverTLS is the HTTPS configuration: TLS 1.2 or later, the
// certificate from r.
func serverTLS(r *certReloader) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// peerTLS is the TLS configuration this instance forwards to other
// instances with: TLS 1.2 or later, their certificates
// verified against --peer-tls-ca-file, or by default the system roots plus
// the CA certificates in --tls-cert-file, so instances whose certificates
// share this one's CA (or this very certificate, if self-signed) trust
// each other with no more flags. Read once at start-up.
func (c *Config) peerTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.PeerTLSCAFile != "" {
		b, err := os.ReadFile(c.PeerTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("peer TLS CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("peer TLS CA %s: no PEM certificate", c.PeerTLSCAFile)
		}
		return cfg, nil
	}
	if c.TLSCertFile == "" {
		return cfg, nil // the system roots
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	cas, err := chainCAs(c.TLSCertFile)
	if err != nil {
		return nil, err
	}
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// chainCAs returns the certificates of a PEM chain that may sign others'
// (CA certificates), and its first certificate if it is self-signed (the
// same certificate on every instance).
func chainCAs(certFile string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	var out []*x509.Certificate
	for i := 0; ; i++ {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
		// (Not CheckSignatureFrom: it refuses a parent that is no CA.)
		selfSigned := i == 0 && bytes.Equal(cert.RawIssuer, cert.RawSubject) &&
			cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
		if cert.IsCA || selfSigned {
			out = append(out, cert)
		}
	}
	return out, nil
}
