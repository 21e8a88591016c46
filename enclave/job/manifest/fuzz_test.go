package manifest

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, file := range testFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(heYAML))
	f.Add([]byte(heJSON))
}

// FuzzParse: Parse never panics, every error is an *Error wrapping ErrInvalid, and what it accepts
// has a canonical form that it accepts again.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "fuzz")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Rule == "" || e.File != "fuzz" {
				t.Fatalf("error %v (%T) is not a complete *Error", err, err)
			}
			return
		}
		if _, err := Parse(m.Canonical(), "canonical"); err != nil {
			t.Fatalf("canonical form refused: %v\n%s", err, m.Canonical())
		}
	})
}

// FuzzCanonical: parse → canonical → parse again → the same canonical bytes, and Validate leaves a
// parsed manifest unchanged.
func FuzzCanonical(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		c1 := m.Canonical()
		m2, err := Parse(c1, "canonical")
		if err != nil {
			t.Fatalf("canonical form refused: %v\n%s", err, c1)
		}
		if c2 := m2.Canonical(); !bytes.Equal(c1, c2) {
			t.Fatalf("canonical form not stable:\n%s\n%s", c1, c2)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Validate of a parsed manifest: %v", err)
		}
		if c3 := m.Canonical(); !bytes.Equal(c1, c3) {
			t.Fatalf("Validate changed a parsed manifest:\n%s\n%s", c1, c3)
		}
	})
}

// FuzzParseSigned: ParseSigned never panics and what it accepts re-encodes to the same bytes.
func FuzzParseSigned(f *testing.F) {
	m, err := Parse([]byte(heYAML), "a.yaml")
	if err != nil {
		f.Fatal(err)
	}
	s, err := Sign(m, identities(f)["bank/bank-a"])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Marshal())
	f.Add([]byte(`{"format":"insitu-signed-job-manifest-v1","manifest":{},"signature":"AA==","signer":"00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseSigned(data, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !bytes.Equal(got.Marshal(), bytes.TrimSuffix(data, []byte{'\n'})) {
			t.Fatal("accepted envelope does not re-encode to its bytes")
		}
	})
}
