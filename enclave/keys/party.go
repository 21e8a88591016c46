package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/crypto/scrypt"
)

// A party key file holds one party's identity on that party's own machine (a bank's risk team, a
// steward): the public part in clear and the private seeds encrypted under a key derived with
// scrypt from a passphrase, or, without a passphrase, in clear in a file only its owner may read.

const partyFormat = "insitu-party-key-v1"

// scrypt parameters for passphrase-protected key files (N = 2^15, r = 8, p = 1: about 100 ms).
const (
	scryptN = 1 << 15
	scryptR = 8
	scryptP = 1
)

type partyFile struct {
	Format string         `json:"format"`
	Public PublicIdentity `json:"public"`
	// KDF is "scrypt" (Seeds is AES-256-GCM nonce ‖ ciphertext under scrypt(passphrase, Salt)) or
	// "none" (Seeds holds the seeds in clear).
	KDF   string `json:"kdf"`
	Salt  string `json:"salt,omitempty"`
	Seeds string `json:"seeds"`
}

// MarshalPartyFile encodes the identity for its owner's key file. With a non-empty passphrase the
// seeds are encrypted; with none they are stored in clear and the file's permissions are all that
// protects them.
func (id *Identity) MarshalPartyFile(passphrase []byte) ([]byte, error) {
	pub := id.Public()
	seeds := append(append([]byte(nil), id.signSeed[:]...), id.kemSeed...)
	f := partyFile{Format: partyFormat, Public: pub, KDF: "none"}
	if len(passphrase) == 0 {
		f.Seeds = base64.StdEncoding.EncodeToString(seeds)
	} else {
		salt := make([]byte, 16)
		if _, err := io.ReadFull(rand.Reader, salt); err != nil {
			return nil, err
		}
		k, err := scrypt.Key(passphrase, salt, scryptN, scryptR, scryptP, 32)
		if err != nil {
			return nil, err
		}
		aead, err := newGCM(k)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
			return nil, err
		}
		f.KDF, f.Salt = "scrypt", base64.StdEncoding.EncodeToString(salt)
		f.Seeds = base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, seeds, []byte(pub.Fingerprint())))
	}
	return json.MarshalIndent(f, "", "  ")
}

// ParsePartyFile decodes a key file written by MarshalPartyFile, checking that the seeds give the
// stored public keys.
func ParsePartyFile(data, passphrase []byte) (*Identity, error) {
	var f partyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: key file: %v", ErrIdentity, err)
	}
	if f.Format != partyFormat {
		return nil, fmt.Errorf("%w: key file format %q, want %q", ErrIdentity, f.Format, partyFormat)
	}
	raw, err := base64.StdEncoding.DecodeString(f.Seeds)
	if err != nil {
		return nil, fmt.Errorf("%w: key file seeds: %v", ErrIdentity, err)
	}
	var seeds []byte
	switch f.KDF {
	case "none":
		seeds = raw
	case "scrypt":
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("%w: the key file is protected by a passphrase; set INSITU_KEY_PASSPHRASE", ErrIdentity)
		}
		salt, err := base64.StdEncoding.DecodeString(f.Salt)
		if err != nil || len(salt) < 16 {
			return nil, fmt.Errorf("%w: key file salt", ErrIdentity)
		}
		k, err := scrypt.Key(passphrase, salt, scryptN, scryptR, scryptP, 32)
		if err != nil {
			return nil, err
		}
		aead, err := newGCM(k)
		if err != nil {
			return nil, err
		}
		if len(raw) < aead.NonceSize() {
			return nil, fmt.Errorf("%w: key file seeds too short", ErrIdentity)
		}
		if seeds, err = aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(f.Public.Fingerprint())); err != nil {
			return nil, fmt.Errorf("%w: wrong passphrase, or the key file was altered", ErrIdentity)
		}
	default:
		return nil, fmt.Errorf("%w: key file kdf %q (want scrypt or none)", ErrIdentity, f.KDF)
	}
	return restore(f.Public, seeds)
}
