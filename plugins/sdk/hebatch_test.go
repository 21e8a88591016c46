package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

type fakeHE struct{ p HEParameters }

func (f fakeHE) Parameters() HEParameters                            { return f.p }
func (f fakeHE) EvaluationKeys(context.Context) ([]byte, error)      { return nil, nil }
func (f fakeHE) Refresh(_ context.Context, c []byte) ([]byte, error) { return c, nil }

func testHEParams() HEParameters {
	lit := []byte(`{"log_n":10}`)
	sum := sha256.Sum256(lit)
	return HEParameters{Literal: lit, Digest: sum[:]}
}

func testHEMeta() HEBatchMeta {
	return HEBatchMeta{
		Features:     []string{"age", "debt"},
		Bounds:       [][2]float64{{-1, 1}, {0, 2.5}},
		Rows:         5,
		Slots:        4,
		ParamsDigest: hex.EncodeToString(testHEParams().Digest),
	}
}

// heRow is one row of an HE batch stream.
type heRow struct {
	block, rows int32
	column      string
	ct          []byte
}

// validRows returns the rows of a valid stream for m, the ciphertext of (block, column) being
// "ct/<block>/<column>".
func validRows(m HEBatchMeta, label bool) []heRow {
	var out []heRow
	for b := range m.Blocks() {
		cols := append([]string(nil), m.Features...)
		if label {
			cols = append(cols, HELabel)
		}
		for _, c := range cols {
			out = append(out, heRow{int32(b), int32(m.BlockRows(b)), c, []byte(fmt.Sprintf("ct/%d/%s", b, c))})
		}
	}
	return out
}

// heInput builds a TrainInput streaming rows in records of at most per rows.
func heInput(t testing.TB, m HEBatchMeta, rows []heRow, per int, label bool) *TrainInput {
	t.Helper()
	s, err := HEBatchSchema(m)
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.Record
	for len(rows) > 0 {
		k := min(per, len(rows))
		b := array.NewRecordBuilder(memory.DefaultAllocator, s)
		for _, r := range rows[:k] {
			b.Field(0).(*array.Int32Builder).Append(r.block)
			b.Field(1).(*array.Int32Builder).Append(r.rows)
			b.Field(2).(*array.StringBuilder).Append(r.column)
			b.Field(3).(*array.BinaryBuilder).Append(r.ct)
		}
		recs = append(recs, b.NewRecord())
		b.Release()
		rows = rows[k:]
	}
	rr, err := array.NewRecordReader(s, recs)
	if err != nil {
		t.Fatal(err)
	}
	in := &TrainInput{Mode: ModeHE, Rows: rr, Features: append([]string(nil), m.Features...), HE: fakeHE{testHEParams()}}
	if label {
		in.Label = HELabel
	}
	return in
}

func TestReadHEBatches(t *testing.T) {
	m := testHEMeta()
	for _, per := range []int{1, 4, 100} {
		got, err := ReadHEBatches(context.Background(), heInput(t, m, validRows(m, true), per, true))
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != 5 || got.Slots != 4 || len(got.Blocks) != 2 || got.Blocks[0].Rows != 4 || got.Blocks[1].Rows != 1 {
			t.Fatalf("per %d: %+v", per, got)
		}
		if got.Bounds[1] != [2]float64{0, 2.5} || got.Features[1] != "debt" || got.ParamsDigest != m.ParamsDigest {
			t.Fatalf("metadata %+v", got)
		}
		if string(got.Blocks[1].Features[1]) != "ct/1/debt" || string(got.Blocks[1].Label) != "ct/1/label" || string(got.Blocks[0].Features[0]) != "ct/0/age" {
			t.Fatalf("ciphertexts out of place: %v", got.Blocks)
		}
	}
	got, err := ReadHEBatches(context.Background(), heInput(t, m, validRows(m, false), 3, false))
	if err != nil || got.Blocks[1].Label != nil || len(got.Blocks) != 2 {
		t.Fatalf("without label: %v %+v", err, got)
	}
}

func TestReadHEBatchesRefuses(t *testing.T) {
	m := testHEMeta()
	rows := validRows(m, true) // 2 blocks × 3 ciphertexts
	with := func(f func(r []heRow) []heRow) []heRow {
		return f(append([]heRow(nil), rows...))
	}
	cases := []struct {
		name   string
		in     *TrainInput
		column string
		detail string
	}{
		{"truncated", heInput(t, m, rows[:5], 2, true), "", "end after 5 of 6"},
		{"extra", heInput(t, m, append(append([]heRow(nil), rows...), rows[5]), 2, true), "", "more ciphertexts"},
		{"swapped features", heInput(t, m, with(func(r []heRow) []heRow { r[0], r[1] = r[1], r[0]; return r }), 2, true), "age", "found column \"debt\""},
		{"block order", heInput(t, m, with(func(r []heRow) []heRow { r[3].block = 0; return r }), 2, true), "age", "found block 0"},
		{"rows", heInput(t, m, with(func(r []heRow) []heRow { r[4].rows = 4; return r }), 2, true), "debt", "4 samples"},
		{"empty", heInput(t, m, with(func(r []heRow) []heRow { r[2].ct = nil; return r }), 2, true), "label", "empty ciphertext"},
		{"label not asked", heInput(t, m, rows, 2, false), "age", "found column \"label\""},
	}
	wrongDigest := heInput(t, m, rows, 2, true)
	wrongDigest.HE = fakeHE{HEParameters{Literal: []byte("x"), Digest: make([]byte, 32)}}
	cases = append(cases, struct {
		name   string
		in     *TrainInput
		column string
		detail string
	}{"digest", wrongDigest, MetaHEParamsDigest, "other parameters"})
	wrongFeatures := heInput(t, m, rows, 2, true)
	wrongFeatures.Features = []string{"age", "income"}
	cases = append(cases, struct {
		name   string
		in     *TrainInput
		column string
		detail string
	}{"features", wrongFeatures, MetaHEFeatures, "feature 1 of the batches is \"debt\", the job names \"income\""})
	noHE := heInput(t, m, rows, 2, true)
	noHE.HE = nil
	cases = append(cases, struct {
		name   string
		in     *TrainInput
		column string
		detail string
	}{"no HE", noHE, "", "no HE batches"})

	for _, c := range cases {
		_, err := ReadHEBatches(context.Background(), c.in)
		var e *Error
		if !errors.Is(err, ErrInput) || !errors.As(err, &e) || e.Column != c.column || !strings.Contains(e.Detail, c.detail) {
			t.Errorf("%s: got %v, want ErrInput on column %q mentioning %q", c.name, err, c.column, c.detail)
		}
	}
}

func TestReadHEBatchesSchema(t *testing.T) {
	md, _ := testHEMeta().Metadata()
	s := arrow.NewSchema([]arrow.Field{{Name: "block", Type: arrow.PrimitiveTypes.Int64}, {Name: "rows", Type: arrow.PrimitiveTypes.Int32},
		{Name: "column", Type: arrow.BinaryTypes.String}, {Name: "ciphertext", Type: arrow.BinaryTypes.Binary}}, &md)
	rr, _ := array.NewRecordReader(s, nil)
	_, err := ReadHEBatches(context.Background(), &TrainInput{Mode: ModeHE, Rows: rr, Features: []string{"age", "debt"}, HE: fakeHE{testHEParams()}})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "int32") {
		t.Fatalf("got %v", err)
	}
	rr, _ = array.NewRecordReader(arrow.NewSchema(heBatchFields, nil), nil)
	_, err = ReadHEBatches(context.Background(), &TrainInput{Mode: ModeHE, Rows: rr, Features: []string{"age", "debt"}, HE: fakeHE{testHEParams()}})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), MetaHELayout) {
		t.Fatalf("got %v", err)
	}
}

func TestHEBatchMeta(t *testing.T) {
	m := testHEMeta()
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseHEBatchMeta(md)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(m) || back.Blocks() != 2 || back.BlockRows(1) != 1 {
		t.Fatalf("round trip %+v, want %+v", back, m)
	}
	if v := md.Values()[md.FindKey(MetaHEBounds)]; v != "[[-1,1],[0,2.5]]" {
		t.Fatalf("bounds encoded as %s", v)
	}
	set := func(key, val string) arrow.Metadata {
		k, v := md.Keys(), append([]string(nil), md.Values()...)
		v[md.FindKey(key)] = val
		return arrow.NewMetadata(k, v)
	}
	for _, c := range []struct {
		key, val, want string
	}{
		{MetaHELayout, "columns.v2", "layout"},
		{MetaHEParamsDigest, strings.ToUpper(m.ParamsDigest), "lower-case hex"},
		{MetaHEParamsDigest, "abc", "64 hex"},
		{MetaHEFeatures, `["a","a"]`, "twice"},
		{MetaHEFeatures, `["a","label"]`, "name of the label"},
		{MetaHEFeatures, `["a",""]`, "empty"},
		{MetaHEFeatures, `[]`, "0 features"},
		{MetaHEFeatures, `{"a":1}`, "JSON"},
		{MetaHEBounds, `[[0,1]]`, "1 bounds for 2"},
		{MetaHEBounds, `[[0,1],[2,1]]`, "lo ≤ hi"},
		{MetaHEBounds, `[[0,1],[0,1,2]]`, "3 numbers"},
		{MetaHERows, "0", "0 samples"},
		{MetaHERows, "05", "canonical"},
		{MetaHERows, "+5", "canonical"},
		{MetaHESlots, "6", "power of two"},
		{MetaHESlots, "-4", "power of two"},
	} {
		_, err := ParseHEBatchMeta(set(c.key, c.val))
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInput) || e.Column != c.key || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: got %v, want ErrInput on %s mentioning %q", c.key, c.val, err, c.key, c.want)
		}
	}
	_, err = ParseHEBatchMeta(arrow.NewMetadata([]string{MetaHELayout}, []string{HELayoutColumnsV1}))
	if !strings.Contains(fmt.Sprint(err), MetaHEParamsDigest) || !strings.Contains(fmt.Sprint(err), "missing") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := HEBatchSchema(HEBatchMeta{}); !errors.Is(err, ErrInput) {
		t.Fatalf("empty meta accepted: %v", err)
	}
}

func FuzzParseHEBatchMeta(f *testing.F) {
	md, _ := testHEMeta().Metadata()
	f.Add(md.Values()[md.FindKey(MetaHEFeatures)], md.Values()[md.FindKey(MetaHEBounds)], "5", "4", testHEMeta().ParamsDigest)
	f.Add(`["x"]`, `[[1e308,1e308]]`, "1073741824", "131072", strings.Repeat("0", 64))
	f.Add(`["a","b"]`, `[[0,1],[NaN,1]]`, "1", "1", "")
	f.Add(`null`, `null`, "-0", "0x10", strings.Repeat("f", 63)+"g")
	f.Fuzz(func(t *testing.T, features, bounds, rows, slots, digest string) {
		in := arrow.NewMetadata(
			[]string{MetaHELayout, MetaHEParamsDigest, MetaHEFeatures, MetaHEBounds, MetaHERows, MetaHESlots},
			[]string{HELayoutColumnsV1, digest, features, bounds, rows, slots})
		m, err := ParseHEBatchMeta(in)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("error %v does not wrap ErrInput", err)
			}
			return
		}
		if m.Validate() != nil || m.Blocks() < 1 || m.BlockRows(m.Blocks()-1) < 1 || m.BlockRows(0) > m.Slots {
			t.Fatalf("accepted inconsistent metadata %+v", m)
		}
		// What parses re-encodes to metadata that parses to the same value.
		out, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseHEBatchMeta(out)
		if err != nil || fmt.Sprint(m2) != fmt.Sprint(m) {
			t.Fatalf("re-encoding changed %+v to %+v (%v)", m, m2, err)
		}
		if !bytes.Equal([]byte(out.Values()[out.FindKey(MetaHERows)]), []byte(rows)) {
			t.Fatalf("rows %q re-encoded as %q", rows, out.Values()[out.FindKey(MetaHERows)])
		}
	})
}
