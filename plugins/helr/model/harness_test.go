package model_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"

	"insitu/plugins/sdk"
)

// testLiteral mirrors the enclave's parameters literal (enclave/he.Literal), which a plugin may not
// import.
type testLiteral struct {
	LogN               int   `json:"log_n"`
	LogQ               []int `json:"log_q"`
	LogP               []int `json:"log_p"`
	LogDefaultScale    int   `json:"log_default_scale"`
	RealOnly           bool  `json:"real_only,omitempty"`
	InsecureForTesting bool  `json:"insecure_for_testing,omitempty"`
}

// testInsecureLogN11 is far below 128-bit security, for fast unit tests only: 1024 slots and seven
// levels, the production set's depth.
var testInsecureLogN11 = testLiteral{
	LogN: 11, LogQ: []int{55, 45, 45, 45, 45, 45, 45, 45}, LogP: []int{61}, LogDefaultScale: 45, InsecureForTesting: true,
}

// testInsecureLogN10RealOnly: 1024 real slots on the conjugate-invariant ring, for tests only.
var testInsecureLogN10RealOnly = testLiteral{
	LogN: 10, LogQ: []int{55, 45, 45, 45, 45, 45, 45, 45}, LogP: []int{61}, LogDefaultScale: 45, RealOnly: true, InsecureForTesting: true,
}

// keyHolder plays the enclave: it holds the secret key, packs batches per the layout columns.v1 and
// serves the refresh by decrypting and re-encrypting.
type keyHolder struct {
	params hefloat.Parameters
	lit    []byte
	sk     *rlwe.SecretKey
	pk     *rlwe.PublicKey
	evk    []byte
	calls  atomic.Int64
}

var _ sdk.HEContext = (*keyHolder)(nil)

func newKeyHolder(t testing.TB, l testLiteral) *keyHolder {
	t.Helper()
	rt := ring.Standard
	if l.RealOnly {
		rt = ring.ConjugateInvariant
	}
	params, err := hefloat.NewParametersFromLiteral(hefloat.ParametersLiteral{
		LogN: l.LogN, LogQ: l.LogQ, LogP: l.LogP, LogDefaultScale: l.LogDefaultScale,
		RingType: rt, Xs: rlwe.DefaultXs, Xe: rlwe.DefaultXe,
	})
	if err != nil {
		t.Fatal(err)
	}
	lit, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	kg := rlwe.NewKeyGenerator(params)
	sk, pk := kg.GenKeyPairNew()
	var gal []uint64
	for k := 1; k < params.MaxSlots(); k <<= 1 {
		gal = append(gal, params.GaloisElement(k))
	}
	evk, err := rlwe.NewMemEvaluationKeySet(kg.GenRelinearizationKeyNew(sk), kg.GenGaloisKeysNew(gal, sk)...).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &keyHolder{params: params, lit: lit, sk: sk, pk: pk, evk: evk}
}

func (k *keyHolder) Parameters() sdk.HEParameters {
	d := sha256.Sum256(k.lit)
	return sdk.HEParameters{Literal: k.lit, Digest: d[:]}
}

func (k *keyHolder) EvaluationKeys(context.Context) ([]byte, error) { return k.evk, nil }

func (k *keyHolder) Refresh(_ context.Context, data []byte) ([]byte, error) {
	k.calls.Add(1)
	ct := new(rlwe.Ciphertext)
	if err := ct.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return k.encrypt(k.decrypt(ct))
}

func (k *keyHolder) encrypt(v []float64) ([]byte, error) {
	pt := hefloat.NewPlaintext(k.params, k.params.MaxLevel())
	if err := hefloat.NewEncoder(k.params).Encode(v, pt); err != nil {
		return nil, err
	}
	ct, err := rlwe.NewEncryptor(k.params, k.pk).EncryptNew(pt)
	if err != nil {
		return nil, err
	}
	return ct.MarshalBinary()
}

func (k *keyHolder) decrypt(ct *rlwe.Ciphertext) []float64 {
	v := make([]float64, k.params.MaxSlots())
	if err := hefloat.NewEncoder(k.params).Decode(rlwe.NewDecryptor(k.params, k.sk).DecryptNew(ct), v); err != nil {
		panic(err)
	}
	return v
}

// slot0 decrypts a marshalled ciphertext and returns its slot 0, as the gate reads it.
func (k *keyHolder) slot0(t testing.TB, data []byte) float64 {
	t.Helper()
	ct := new(rlwe.Ciphertext)
	if err := ct.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	return k.decrypt(ct)[0]
}

// dataset is a plaintext cohort: features column by column and labels.
type dataset struct {
	names  []string
	cols   [][]float64
	y      []float64
	bounds [][2]float64
}

// synthetic draws n rows of d standard-normal features clipped to ±4 with labels from a logistic
// model, the kind of input the enclave's HE transforms produce.
func synthetic(n, d int, seed uint64) dataset {
	r := rand.New(rand.NewPCG(seed, 3))
	ds := dataset{cols: make([][]float64, d), y: make([]float64, n)}
	for j := range d {
		ds.names = append(ds.names, "x"+strconv.Itoa(j+1))
		ds.cols[j] = make([]float64, n)
		ds.bounds = append(ds.bounds, [2]float64{-4, 4})
	}
	for i := range n {
		u := -1.2
		for j := range d {
			v := math.Max(-4, math.Min(4, r.NormFloat64()))
			ds.cols[j][i] = v
			u += v * 0.6 * float64(j%3-1+2*(j%2))
		}
		if r.Float64() < 1/(1+math.Exp(-u)) {
			ds.y[i] = 1
		}
	}
	return ds
}

// pack encrypts ds per the layout columns.v1 and returns the Arrow stream.
func (k *keyHolder) pack(t testing.TB, ds dataset) array.RecordReader {
	t.Helper()
	S := k.params.MaxSlots()
	n := len(ds.y)
	digest := k.Parameters().Digest
	schema, err := sdk.HEBatchSchema(sdk.HEBatchMeta{
		Features: ds.names, Bounds: ds.bounds, Rows: n, Slots: S, ParamsDigest: hexString(digest),
	})
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.Record
	for b := 0; b*S < n; b++ {
		rows := min(S, n-b*S)
		bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		add := func(name string, v []float64) {
			slots := make([]float64, S)
			copy(slots, v[b*S:b*S+rows])
			data, err := k.encrypt(slots)
			if err != nil {
				t.Fatal(err)
			}
			bld.Field(0).(*array.Int32Builder).Append(int32(b))
			bld.Field(1).(*array.Int32Builder).Append(int32(rows))
			bld.Field(2).(*array.StringBuilder).Append(name)
			bld.Field(3).(*array.BinaryBuilder).Append(data)
		}
		for j, name := range ds.names {
			add(name, ds.cols[j])
		}
		add(sdk.HELabel, ds.y)
		recs = append(recs, bld.NewRecord())
		bld.Release()
	}
	rr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 2*len(b))
	for i, c := range b {
		s[2*i], s[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(s)
}

// input builds the TrainInput the enclave would hand the plugin.
func (k *keyHolder) input(t testing.TB, ds dataset, hp map[string]any) *sdk.TrainInput {
	return &sdk.TrainInput{
		Mode:            sdk.ModeHE,
		Rows:            k.pack(t, ds),
		Features:        ds.names,
		Label:           sdk.HELabel,
		Subject:         "subject",
		Hyperparameters: sdk.MustHyperparameters(hp),
		HE:              k,
		Limits:          sdk.DefaultLimits(),
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// weights decrypts an output into weights (in ds order) and the intercept.
func (k *keyHolder) weights(t testing.TB, ds dataset, out *sdk.Output) ([]float64, float64) {
	t.Helper()
	if len(out.Ciphertexts) != len(ds.names)+1 {
		t.Fatalf("%d ciphertexts, want %d", len(out.Ciphertexts), len(ds.names)+1)
	}
	byName := map[string][]byte{}
	for _, c := range out.Ciphertexts {
		byName[c.Name] = c.Data
	}
	w := make([]float64, len(ds.names))
	for j, name := range ds.names {
		data, ok := byName["weight/"+name]
		if !ok {
			t.Fatalf("no ciphertext weight/%s among the outputs", name)
		}
		w[j] = k.slot0(t, data)
	}
	data, ok := byName["intercept"]
	if !ok {
		t.Fatal("no intercept among the outputs")
	}
	return w, k.slot0(t, data)
}
