package api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"insitu/enclave/datadir"
	"insitu/enclave/keys"
)

// The enclave's TLS certificate is self-signed and pinned by clients (Fingerprint). It lives in the
// data directory's TLSDir: the certificate in clear, its ECDSA P-256 private key encrypted under a key
// derived from the master key (PurposeTLSKey), like the enclave's identity.
const (
	TLSDir       = "tls"
	certFile     = "cert.pem"
	keyFile      = "key.sealed"
	certValidity = 10 * 365 * 24 * time.Hour
	// PurposeTLSKey derives the key that encrypts the TLS private key at rest.
	PurposeTLSKey = "api tls key v1"
	// FingerprintPrefix starts a certificate fingerprint: SHA256: and the hex SHA-256 of the DER.
	FingerprintPrefix = "SHA256:"
)

// ErrFingerprint is wrapped when a fingerprint is malformed or a server's certificate does not match
// the pinned one.
var ErrFingerprint = errors.New("TLS certificate fingerprint mismatch")

// Fingerprint returns the pin of a DER certificate: "SHA256:" and 64 lower-case hex digits.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return FingerprintPrefix + hex.EncodeToString(h[:])
}

// ParseFingerprint normalises a pin as a user types it: the prefix in any case (or none), hex in
// any case, colons allowed between bytes.
func ParseFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) >= len(FingerprintPrefix) && strings.EqualFold(t[:len(FingerprintPrefix)], FingerprintPrefix) {
		t = t[len(FingerprintPrefix):]
	}
	t = strings.ToLower(strings.ReplaceAll(t, ":", ""))
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%w: %q is not SHA256: and 64 hex digits (insitu serve and insitu identity print it)", ErrFingerprint, s)
	}
	return FingerprintPrefix + t, nil
}

// LoadOrCreateCert returns the enclave's TLS certificate and its fingerprint, creating a new
// self-signed one the first time. hosts are extra DNS names or IP addresses to put in it (the
// certificate is pinned, so they only matter to clients that also check names).
func LoadOrCreateCert(d *datadir.DataDir, hosts ...string) (tls.Certificate, string, error) {
	dir, err := d.Sub(TLSDir)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	aead, err := tlsKeyAEAD(d.Key())
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPEM, cerr := os.ReadFile(filepath.Join(dir, certFile))
	sealed, kerr := os.ReadFile(filepath.Join(dir, keyFile))
	switch {
	case cerr == nil && kerr == nil:
		return openCert(certPEM, sealed, aead)
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return tls.Certificate{}, "", cerr
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return tls.Certificate{}, "", kerr
	default:
		return tls.Certificate{}, "", fmt.Errorf("api: %s holds only one of %s and %s: remove the folder to make a new certificate (clients must then pin the new fingerprint)", dir, certFile, keyFile)
	}
	certPEM, sealed, err = newCert(aead, hosts)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	// The key first: a crash between the two writes leaves a key without a certificate, which the
	// next start reports instead of silently pairing a new key with an old pin.
	if err := datadir.WriteFileAtomic(filepath.Join(dir, keyFile), sealed, 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := datadir.WriteFileAtomic(filepath.Join(dir, certFile), certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", err
	}
	return openCert(certPEM, sealed, aead)
}

func tlsKeyAEAD(m *keys.MasterKey) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(m.Derive(PurposeTLSKey, 32))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

var tlsKeyAAD = []byte("insitu api tls private key v1")

func newCert(aead cipher.AEAD, hosts []string) (certPEM, sealed []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "insitu enclave"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), aead.Seal(nonce, nonce, pk, tlsKeyAAD), nil
}

func openCert(certPEM, sealed []byte, aead cipher.AEAD) (tls.Certificate, string, error) {
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return tls.Certificate{}, "", fmt.Errorf("api: %s/%s is not a PEM certificate", TLSDir, certFile)
	}
	n := aead.NonceSize()
	if len(sealed) < n {
		return tls.Certificate{}, "", fmt.Errorf("api: %s/%s is truncated", TLSDir, keyFile)
	}
	pk, err := aead.Open(nil, sealed[:n], sealed[n:], tlsKeyAAD)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("api: %s/%s does not open with this master key", TLSDir, keyFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(pk)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("api: %s/%s: %w", TLSDir, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("api: %s/%s: %w", TLSDir, certFile, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if priv, ok2 := key.(*ecdsa.PrivateKey); !ok || !ok2 || !pub.Equal(&priv.PublicKey) {
		return tls.Certificate{}, "", fmt.Errorf("api: the TLS key in %s does not belong to its certificate", TLSDir)
	}
	return tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: key, Leaf: leaf}, Fingerprint(blk.Bytes), nil
}

// ServerTLSConfig is the server's TLS configuration: TLS 1.3 only, with Go's default key exchanges
// (X25519MLKEM768, the hybrid post-quantum one, first).
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
}

// ClientTLSConfig is a client's TLS configuration pinning the server's certificate by fingerprint
// (as ParseFingerprint returns it): any other certificate fails the handshake, whatever CA signed it.
func ClientTLSConfig(fingerprint string) (*tls.Config, error) {
	pin, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is not checked against CAs: the pin below replaces that check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the server sent no certificate", ErrFingerprint)
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != pin {
				return fmt.Errorf("%w: the server's certificate is %s, the profile pins %s", ErrFingerprint, got, pin)
			}
			return nil
		},
	}, nil
}
