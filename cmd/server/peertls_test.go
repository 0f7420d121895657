package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPeerTLS: which certificates an instance trusts when it forwards to
// others: by default its own certificate's CA (listed after it in
// --tls-cert-file) or its own self-signed certificate, on top of the
// system roots; with --peer-tls-ca-file those CAs only.
func TestPeerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	sibling, _ := ca.issue(t, dir, "sibling", false)
	leafOnly, leafKey := ca.issue(t, dir, "leaf", false)
	chained, _ := ca.issue(t, dir, "chained", true)
	self, selfKey, selfCert := selfSigned(t, t.TempDir(), "self")
	leafSelf, leafSelfKey, leafSelfCert := selfSignedLeaf(t, dir)

	parse := func(file string) *x509.Certificate { // the first certificate of a PEM file
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	verifies := func(cfg Config, peer *x509.Certificate) bool {
		t.Helper()
		tc, err := cfg.peerTLS()
		if err != nil {
			t.Fatal(err)
		}
		_, err = peer.Verify(x509.VerifyOptions{Roots: tc.RootCAs, DNSName: "127.0.0.1"})
		return err == nil
	}
	for _, c := range []struct {
		name string
		cfg  Config
		peer *x509.Certificate
		want bool
	}{
		{"ChainCA", Config{TLSCertFile: chained, TLSKeyFile: leafKey}, parse(sibling), true},
		{"LeafWithoutChain", Config{TLSCertFile: leafOnly, TLSKeyFile: leafKey}, parse(sibling), false},
		{"SelfSigned", Config{TLSCertFile: self, TLSKeyFile: selfKey}, selfCert, true},
		{"SelfSignedNotCA", Config{TLSCertFile: leafSelf, TLSKeyFile: leafSelfKey}, leafSelfCert, true},
		{"PeerCAFile", Config{TLSCertFile: leafOnly, TLSKeyFile: leafKey, PeerTLSCAFile: ca.file}, parse(sibling), true},
		{"PeerCAFileOnly", Config{TLSCertFile: self, TLSKeyFile: selfKey, PeerTLSCAFile: ca.file}, selfCert, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := verifies(c.cfg, c.peer); got != c.want {
				t.Fatalf("peer certificate verifies = %v, want %v", got, c.want)
			}
		})
	}
	t.Run("BadCAFile", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.pem")
		os.WriteFile(bad, []byte("not a certificate"), 0o600)
		for _, f := range []string{bad, filepath.Join(dir, "missing.pem")} {
			if _, err := (&Config{PeerTLSCAFile: f}).peerTLS(); err == nil {
				t.Errorf("--peer-tls-ca-file=%s accepted", f)
			}
		}
	})
}

// selfSignedLeaf writes a self-signed certificate for 127.0.0.1 that is
// not a CA (basic constraints CA:FALSE), as some tools make them.
func selfSignedLeaf(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "self leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "self-leaf.pem"), filepath.Join(dir, "self-leaf-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}
