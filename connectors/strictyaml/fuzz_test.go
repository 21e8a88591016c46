package strictyaml

import (
	"bytes"
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzDecode: reading and decoding never panic, every error is the dialect's own with a message
// and a rule, and a document that decodes decodes again to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{sampleYAML, sampleJSON, "name: &n a\n", "name: a\n---\nname: b\n",
		"extra: {a: {b: {c: 1}}}\n", "{\"extra\": [[[1]]]}", "sub: {width: 3000000000, scale: .nan}\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range []*Dialect{plain, typed} {
			read := d.Read
			if d.Typed {
				read = d.ReadJSONOrYAML
			}
			n, err := read(data)
			if err == nil {
				var s sample
				if _, err = d.Decode(n, &s); err == nil {
					// Compared as YAML, where a NaN equals itself.
					var again sample
					if _, err := d.Decode(n, &again); err != nil || !bytes.Equal(marshal(t, s), marshal(t, again)) {
						t.Fatalf("decoded twice: %s then %s (%v)", marshal(t, s), marshal(t, again), err)
					}
					continue
				}
			}
			var e *testError
			if !errors.As(err, &e) || e.Message == "" || e.Rule == "" || e.Line < 0 {
				t.Fatalf("error %v (%T) is not a complete *testError", err, err)
			}
		}
	})
}

func marshal(t *testing.T, v any) []byte {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
