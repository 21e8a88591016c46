package cohort

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"insitu/enclave/keys"
)

// A bank's labels travel sealed to the enclave: HPKE with the X-Wing hybrid post-quantum KEM to the
// enclave's identity, so that only the enclave opens them. The bank validates them before sealing,
// so a mistake is reported on its own machine with its row; the enclave validates them again after
// opening.

// LabelsInfo is the HPKE info string of sealed labels; it binds the purpose into the encryption.
const LabelsInfo = "insitu labels v1"

const sealedFormat = "insitu-sealed-labels-v1"

// ErrSealed is wrapped by errors about a sealed label file as a whole.
var ErrSealed = errors.New("invalid sealed label file")

type sealedFile struct {
	Format string `json:"format"`
	// To is the fingerprint of the enclave identity the labels are sealed to.
	To string `json:"to"`
	// Subjects is how many subjects the file labels (the bank knows it; it reveals nothing more).
	Subjects int    `json:"subjects"`
	Sealed   string `json:"sealed"`
}

// SealLabels checks a label file (see ParseLabels; name is used in errors) and seals it to the
// enclave. It returns the sealed file and its SHA-256, which a job manifest names.
func SealLabels(to keys.PublicIdentity, data []byte, name string) ([]byte, string, error) {
	if to.Role != keys.RoleEnclave {
		return nil, "", fmt.Errorf("%w: %s is a %s identity; seal labels to the enclave's (insitu identity prints it)", ErrSealed, to.Name, to.Role)
	}
	l, err := ParseLabels(bytes.NewReader(data), name)
	if err != nil {
		return nil, "", err
	}
	ct, err := to.Seal(data, LabelsInfo)
	if err != nil {
		return nil, "", err
	}
	out, err := json.MarshalIndent(sealedFile{Format: sealedFormat, To: to.Fingerprint(), Subjects: l.Len(),
		Sealed: base64.StdEncoding.EncodeToString(ct)}, "", "  ")
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(out)
	return out, hex.EncodeToString(sum[:]), nil
}

// OpenLabels opens labels sealed to id and validates them as ParseLabels does.
func OpenLabels(id *keys.Identity, sealed []byte, name string) (*Labels, error) {
	var f sealedFile
	dec := json.NewDecoder(bytes.NewReader(sealed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSealed, name, err)
	}
	if f.Format != sealedFormat {
		return nil, fmt.Errorf("%w: %s: format %q, want %q", ErrSealed, name, f.Format, sealedFormat)
	}
	if want := id.Public().Fingerprint(); f.To != want {
		return nil, fmt.Errorf("%w: %s is sealed to identity %s, this enclave is %s", ErrSealed, name, f.To, want)
	}
	ct, err := base64.StdEncoding.DecodeString(f.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSealed, name, err)
	}
	pt, err := id.Open(ct, LabelsInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSealed, name, err)
	}
	l, err := ParseLabels(bytes.NewReader(pt), name)
	if err != nil {
		return nil, err
	}
	if l.Len() != f.Subjects {
		return nil, fmt.Errorf("%w: %s: says %d subjects, holds %d", ErrSealed, name, f.Subjects, l.Len())
	}
	return l, nil
}
