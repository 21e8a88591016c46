package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Roles a party's identity may have.
const (
	RoleEnclave    = "enclave"
	RoleBank       = "bank"
	RoleSteward    = "steward"
	RoleResearcher = "researcher"
	RoleAdmin      = "admin"
)

var roles = map[string]bool{RoleEnclave: true, RoleBank: true, RoleSteward: true, RoleResearcher: true, RoleAdmin: true}

var partyNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// hpkeSuite seals data to a party: X-Wing (X25519 + ML-KEM-768) hybrid post-quantum KEM, HKDF-SHA-256,
// AES-256-GCM.
var hpkeSuite = hpke.NewSuite(hpke.KEM_XWING, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES256GCM)

// ErrIdentity is wrapped by identity errors.
var ErrIdentity = errors.New("invalid identity")

// Identity is a party's private identity: an ML-DSA-65 signing key and an X-Wing HPKE key, both
// derived from 32-byte seeds.
type Identity struct {
	Name string
	Role string
	sign *mldsa65.PrivateKey
	kem  kem.PrivateKey

	signSeed [mldsa65.SeedSize]byte
	kemSeed  []byte
}

// PublicIdentity is what other parties know of an identity.
type PublicIdentity struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	SigningKey []byte `json:"signing_key"` // ML-DSA-65 public key
	HPKEKey    []byte `json:"hpke_key"`    // X-Wing public key
}

// NewIdentity creates a new identity with fresh random keys.
func NewIdentity(role, name string) (*Identity, error) {
	var ss [mldsa65.SeedSize]byte
	ks := make([]byte, hpke.KEM_XWING.Scheme().SeedSize())
	if _, err := io.ReadFull(rand.Reader, ss[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rand.Reader, ks); err != nil {
		return nil, err
	}
	return identityFromSeeds(role, name, ss, ks)
}

func identityFromSeeds(role, name string, ss [mldsa65.SeedSize]byte, ks []byte) (*Identity, error) {
	if !roles[role] {
		return nil, fmt.Errorf("%w: role %q is not one of enclave, bank, steward, researcher, admin", ErrIdentity, role)
	}
	if !partyNameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: name %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", ErrIdentity, name)
	}
	if len(ks) != hpke.KEM_XWING.Scheme().SeedSize() {
		return nil, fmt.Errorf("%w: HPKE seed of %d bytes", ErrIdentity, len(ks))
	}
	_, sk := mldsa65.NewKeyFromSeed(&ss)
	_, kp := hpke.KEM_XWING.Scheme().DeriveKeyPair(ks)
	return &Identity{Name: name, Role: role, sign: sk, kem: kp, signSeed: ss, kemSeed: append([]byte(nil), ks...)}, nil
}

// Public returns the public identity.
func (id *Identity) Public() PublicIdentity {
	pk, _ := id.kem.Public().MarshalBinary()
	return PublicIdentity{Name: id.Name, Role: id.Role, SigningKey: id.sign.Public().(*mldsa65.PublicKey).Bytes(), HPKEKey: pk}
}

// Sign signs msg under a context string that names what is signed (e.g. "insitu manifest v1"), so a
// signature over one kind of object never verifies as another.
func (id *Identity) Sign(msg []byte, context string) ([]byte, error) {
	sig := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(id.sign, msg, []byte(context), true, sig); err != nil {
		return nil, err
	}
	return sig, nil
}

// Verify reports whether sig is the identity's signature over msg under context.
func (p PublicIdentity) Verify(msg []byte, context string, sig []byte) bool {
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(p.SigningKey); err != nil {
		return false
	}
	return mldsa65.Verify(&pk, msg, []byte(context), sig)
}

// Fingerprint is the first 16 bytes of SHA-256 over the role, name and both public keys, in hex.
func (p PublicIdentity) Fingerprint() string {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(p.Role), []byte(p.Name), p.SigningKey, p.HPKEKey} {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
		h.Write(n[:])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Seal encrypts plaintext so that only the holder of p's identity can open it. info binds the
// purpose (e.g. "insitu labels v1"); the result is the KEM encapsulation followed by the ciphertext.
func (p PublicIdentity) Seal(plaintext []byte, info string) ([]byte, error) {
	pk, err := hpke.KEM_XWING.Scheme().UnmarshalBinaryPublicKey(p.HPKEKey)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE key of %s: %v", ErrIdentity, p.Name, err)
	}
	snd, err := hpkeSuite.NewSender(pk, []byte(info))
	if err != nil {
		return nil, err
	}
	enc, sealer, err := snd.Setup(rand.Reader)
	if err != nil {
		return nil, err
	}
	ct, err := sealer.Seal(plaintext, nil)
	if err != nil {
		return nil, err
	}
	return append(enc, ct...), nil
}

// ErrOpen is returned when a sealed message does not open: wrong recipient, wrong info, or altered.
var ErrOpen = errors.New("sealed message does not open with this identity")

// Open decrypts a message sealed to the identity with the same info.
func (id *Identity) Open(sealed []byte, info string) ([]byte, error) {
	n := hpke.KEM_XWING.Scheme().CiphertextSize()
	if len(sealed) < n {
		return nil, ErrOpen
	}
	rcv, err := hpkeSuite.NewReceiver(id.kem, []byte(info))
	if err != nil {
		return nil, err
	}
	opener, err := rcv.Setup(sealed[:n])
	if err != nil {
		return nil, ErrOpen
	}
	pt, err := opener.Open(sealed[n:], nil)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// identityFile is the stored form of an identity: the public part in clear, the seeds encrypted.
type identityFile struct {
	Format string         `json:"format"`
	Public PublicIdentity `json:"public"`
	// Sealed is AES-256-GCM(nonce ‖ ciphertext) of the two seeds under a key derived from the master
	// key, with the public part's fingerprint as additional data.
	Sealed string `json:"sealed"`
}

const identityFormat = "insitu-identity-v1"

// PurposeIdentity derives the key that encrypts an identity's seeds at rest.
const PurposeIdentity = "identity seeds v1"

// MarshalSealed encodes the identity for storage, its private seeds encrypted under m.
func (id *Identity) MarshalSealed(m *MasterKey) ([]byte, error) {
	pub := id.Public()
	aead, err := newGCM(m.Derive(PurposeIdentity, 32))
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	seeds := append(append([]byte(nil), id.signSeed[:]...), id.kemSeed...)
	ct := aead.Seal(nonce, nonce, seeds, []byte(pub.Fingerprint()))
	return json.MarshalIndent(identityFile{Format: identityFormat, Public: pub, Sealed: base64.StdEncoding.EncodeToString(ct)}, "", "  ")
}

// UnmarshalSealed decodes an identity stored by MarshalSealed, checking that its seeds give the
// stored public keys.
func UnmarshalSealed(data []byte, m *MasterKey) (*Identity, error) {
	var f identityFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	if f.Format != identityFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrIdentity, f.Format, identityFormat)
	}
	ct, err := base64.StdEncoding.DecodeString(f.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed seeds: %v", ErrIdentity, err)
	}
	aead, err := newGCM(m.Derive(PurposeIdentity, 32))
	if err != nil {
		return nil, err
	}
	if len(ct) < aead.NonceSize() {
		return nil, fmt.Errorf("%w: sealed seeds too short", ErrIdentity)
	}
	seeds, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(f.Public.Fingerprint()))
	if err != nil {
		return nil, fmt.Errorf("%w: seeds do not decrypt with this master key, or the file was altered", ErrIdentity)
	}
	return restore(f.Public, seeds)
}

// restore rebuilds an identity from its stored seeds (signing seed then HPKE seed) and checks that
// they give the stored public keys.
func restore(pub PublicIdentity, seeds []byte) (*Identity, error) {
	if len(seeds) != mldsa65.SeedSize+hpke.KEM_XWING.Scheme().SeedSize() {
		return nil, fmt.Errorf("%w: seeds of %d bytes", ErrIdentity, len(seeds))
	}
	var ss [mldsa65.SeedSize]byte
	copy(ss[:], seeds)
	id, err := identityFromSeeds(pub.Role, pub.Name, ss, seeds[mldsa65.SeedSize:])
	if err != nil {
		return nil, err
	}
	if id.Public().Fingerprint() != pub.Fingerprint() {
		return nil, fmt.Errorf("%w: public keys do not match the seeds", ErrIdentity)
	}
	return id, nil
}

// ParsePublic decodes a public identity (JSON), as printed by `insitu identity`, and checks its keys.
func ParsePublic(data []byte) (PublicIdentity, error) {
	var p PublicIdentity
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return PublicIdentity{}, fmt.Errorf("%w: %v", ErrIdentity, err)
	}
	if !roles[p.Role] || !partyNameRE.MatchString(p.Name) {
		return PublicIdentity{}, fmt.Errorf("%w: role %q or name %q not valid", ErrIdentity, p.Role, p.Name)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(p.SigningKey); err != nil {
		return PublicIdentity{}, fmt.Errorf("%w: signing key: %v", ErrIdentity, err)
	}
	if _, err := hpke.KEM_XWING.Scheme().UnmarshalBinaryPublicKey(p.HPKEKey); err != nil {
		return PublicIdentity{}, fmt.Errorf("%w: HPKE key: %v", ErrIdentity, err)
	}
	return p, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
