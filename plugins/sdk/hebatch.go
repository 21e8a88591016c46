package sdk

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// The HE batch layout "columns.v1": how the enclave streams a cohort to a plugin in ModeHE.
//
// S is the number of slots of one ciphertext. Sample i of the cohort lives in block i/S, slot i%S.
// TrainInput.Rows is an Arrow stream with one row per ciphertext, columns HEColBlock (int32, the
// block index), HEColRows (int32, the samples in the block: slots 0..rows-1 hold data, the others
// hold 0), HEColColumn (utf8, a feature name or HELabel) and HEColCiphertext (binary, a marshalled
// rlwe.Ciphertext: a fresh public-key encryption at the top level with the default scale). Rows come
// block-major; inside a block, the features in model order, then the label (values 0 or 1). The
// schema's metadata (the MetaHE keys) names the layout, the parameters' digest, the features, their
// public bounds, the number of samples and S. ReadHEBatches reads and checks the stream;
// HEBatchSchema builds the schema.
const HELayoutColumnsV1 = "columns.v1"

// Schema metadata keys of an HE batch stream.
const (
	// MetaHELayout holds the layout name, HELayoutColumnsV1.
	MetaHELayout = "insitu.he.layout"
	// MetaHEParamsDigest holds the hex SHA-256 of the parameters literal (HEParameters.Digest).
	MetaHEParamsDigest = "insitu.he.params_digest"
	// MetaHEFeatures holds a JSON array of the feature names in model order.
	MetaHEFeatures = "insitu.he.features"
	// MetaHEBounds holds a JSON array of [lo, hi] per feature: public bounds every encrypted value
	// of that feature lies in (the enclave clips and scales to guarantee them).
	MetaHEBounds = "insitu.he.bounds"
	// MetaHERows holds the number of samples, in decimal.
	MetaHERows = "insitu.he.rows"
	// MetaHESlots holds the number of slots of one ciphertext, in decimal.
	MetaHESlots = "insitu.he.slots"
)

// Column names of an HE batch stream, and the name of the label in its HEColColumn.
const (
	HEColBlock      = "block"
	HEColRows       = "rows"
	HEColColumn     = "column"
	HEColCiphertext = "ciphertext"
	HELabel         = "label"
)

// Names of the ciphertexts an HE logistic-regression plugin returns in Output.Ciphertexts: one per
// feature named HEOutputWeightPrefix + feature, and HEOutputIntercept. The gate decrypts each and
// reads slot 0 only.
const (
	HEOutputWeightPrefix = "weight/"
	HEOutputIntercept    = "intercept"
)

// Bounds on an HE batch stream's metadata, beyond which it is refused.
const (
	// MaxHERows bounds the number of samples of a stream.
	MaxHERows = 1 << 30
	// MaxHESlots bounds the number of slots of a ciphertext (ring degree 2^17, real-only ring).
	MaxHESlots = 1 << 17
	// MaxHEFeatures bounds the number of features of a stream.
	MaxHEFeatures = 1 << 12
)

// HEBatchMeta is the metadata of an HE batch stream.
type HEBatchMeta struct {
	// Features names the features in model order.
	Features []string
	// Bounds holds the public interval [lo, hi] of each feature.
	Bounds [][2]float64
	// Rows is the number of samples; Slots the number of slots of one ciphertext.
	Rows, Slots int
	// ParamsDigest is the hex SHA-256 of the parameters literal.
	ParamsDigest string
}

// Blocks returns the number of blocks, ceil(Rows/Slots).
func (m HEBatchMeta) Blocks() int {
	if m.Slots <= 0 {
		return 0
	}
	return (m.Rows + m.Slots - 1) / m.Slots
}

// BlockRows returns the number of samples in block b: Slots for every block but the last.
func (m HEBatchMeta) BlockRows(b int) int {
	return min(m.Slots, m.Rows-b*m.Slots)
}

// Validate checks the metadata: a layout-sized, lower-case hex digest; at least one feature, each a
// non-empty name of at most MaxNameBytes, without repeats and other than HELabel; one finite bound
// [lo, hi] with lo ≤ hi per feature; 1 ≤ Rows ≤ MaxHERows; Slots a power of two up to MaxHESlots.
// The error wraps ErrInput.
func (m HEBatchMeta) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &Error{Column: key, Err: ErrInput, Detail: "HE batch metadata: " + fmt.Sprintf(format, args...)}
	}
	if len(m.ParamsDigest) != 64 {
		return bad(MetaHEParamsDigest, "digest of %d characters, want 64 hex digits", len(m.ParamsDigest))
	}
	for _, c := range m.ParamsDigest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return bad(MetaHEParamsDigest, "digest is not lower-case hex")
		}
	}
	if len(m.Features) == 0 || len(m.Features) > MaxHEFeatures {
		return bad(MetaHEFeatures, "%d features, want 1 to %d", len(m.Features), MaxHEFeatures)
	}
	seen := make(map[string]bool, len(m.Features))
	for _, f := range m.Features {
		switch {
		case f == "" || len(f) > MaxNameBytes:
			return bad(MetaHEFeatures, "feature name %q is empty or longer than %d bytes", f, MaxNameBytes)
		case f == HELabel:
			return bad(MetaHEFeatures, "a feature is named %q, the name of the label", HELabel)
		case seen[f]:
			return bad(MetaHEFeatures, "feature %q appears twice", f)
		}
		seen[f] = true
	}
	if len(m.Bounds) != len(m.Features) {
		return bad(MetaHEBounds, "%d bounds for %d features", len(m.Bounds), len(m.Features))
	}
	for j, b := range m.Bounds {
		if math.IsNaN(b[0]) || math.IsNaN(b[1]) || math.IsInf(b[0], 0) || math.IsInf(b[1], 0) || b[0] > b[1] {
			return bad(MetaHEBounds, "bounds of feature %q are [%v, %v], want finite lo ≤ hi", m.Features[j], b[0], b[1])
		}
	}
	if m.Rows < 1 || m.Rows > MaxHERows {
		return bad(MetaHERows, "%d samples, want 1 to %d", m.Rows, MaxHERows)
	}
	if m.Slots < 1 || m.Slots > MaxHESlots || bits.OnesCount(uint(m.Slots)) != 1 {
		return bad(MetaHESlots, "%d slots, want a power of two up to %d", m.Slots, MaxHESlots)
	}
	return nil
}

// Metadata returns the schema metadata of m, after Validate.
func (m HEBatchMeta) Metadata() (arrow.Metadata, error) {
	if err := m.Validate(); err != nil {
		return arrow.Metadata{}, err
	}
	feats, _ := json.Marshal(m.Features)
	bounds, _ := json.Marshal(m.Bounds)
	return arrow.NewMetadata(
		[]string{MetaHELayout, MetaHEParamsDigest, MetaHEFeatures, MetaHEBounds, MetaHERows, MetaHESlots},
		[]string{HELayoutColumnsV1, m.ParamsDigest, string(feats), string(bounds), strconv.Itoa(m.Rows), strconv.Itoa(m.Slots)},
	), nil
}

// HEBatchFields are the columns of the layout, in order.
var heBatchFields = []arrow.Field{
	{Name: HEColBlock, Type: arrow.PrimitiveTypes.Int32},
	{Name: HEColRows, Type: arrow.PrimitiveTypes.Int32},
	{Name: HEColColumn, Type: arrow.BinaryTypes.String},
	{Name: HEColCiphertext, Type: arrow.BinaryTypes.Binary},
}

// HEBatchSchema returns the Arrow schema of an HE batch stream with metadata m, the one definition
// the enclave writes and ReadHEBatches reads. The error wraps ErrInput when m does not validate.
func HEBatchSchema(m HEBatchMeta) (*arrow.Schema, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	return arrow.NewSchema(append([]arrow.Field(nil), heBatchFields...), &md), nil
}

// ParseHEBatchMeta reads and validates the metadata of an HE batch stream. The error wraps ErrInput
// and names the key at fault.
func ParseHEBatchMeta(md arrow.Metadata) (HEBatchMeta, error) {
	get := func(key string) (string, error) {
		i := md.FindKey(key)
		if i < 0 {
			return "", &Error{Column: key, Err: ErrInput, Detail: "HE batch metadata: key missing"}
		}
		return md.Values()[i], nil
	}
	bad := func(key, format string, args ...any) error {
		return &Error{Column: key, Err: ErrInput, Detail: "HE batch metadata: " + fmt.Sprintf(format, args...)}
	}
	var m HEBatchMeta
	layout, err := get(MetaHELayout)
	if err != nil {
		return m, err
	}
	if layout != HELayoutColumnsV1 {
		return m, bad(MetaHELayout, "layout %.64q, want %q (the plugin's SDK is older than the enclave's layout)", layout, HELayoutColumnsV1)
	}
	if m.ParamsDigest, err = get(MetaHEParamsDigest); err != nil {
		return m, err
	}
	decode := func(key string, v any) error {
		s, err := get(key)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return bad(key, "not valid JSON of the layout: %v", err)
		}
		return nil
	}
	if err := decode(MetaHEFeatures, &m.Features); err != nil {
		return m, err
	}
	var bounds [][]float64
	if err := decode(MetaHEBounds, &bounds); err != nil {
		return m, err
	}
	for _, b := range bounds {
		if len(b) != 2 {
			return m, bad(MetaHEBounds, "a bound of %d numbers, want [lo, hi]", len(b))
		}
		m.Bounds = append(m.Bounds, [2]float64{b[0], b[1]})
	}
	count := func(key string) (int, error) {
		s, err := get(key)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(s)
		if err != nil || strconv.Itoa(n) != s {
			return 0, bad(key, "%.32q is not a canonical decimal integer", s)
		}
		return n, nil
	}
	if m.Rows, err = count(MetaHERows); err != nil {
		return m, err
	}
	if m.Slots, err = count(MetaHESlots); err != nil {
		return m, err
	}
	return m, m.Validate()
}

// HEBatches is an HE batch stream read into memory by ReadHEBatches.
type HEBatches struct {
	// Features names the features in model order (equal to TrainInput.Features).
	Features []string
	// Bounds holds the public interval [lo, hi] every value of each feature lies in.
	Bounds [][2]float64
	// Rows is the number of samples; Slots the number of slots of one ciphertext.
	Rows, Slots int
	// ParamsDigest is the hex SHA-256 of the parameters literal.
	ParamsDigest string
	// Blocks holds the blocks in order; block b holds samples b*Slots .. b*Slots+Rows-1.
	Blocks []HEBlock
}

// HEBlock is one block of samples: one ciphertext per feature and one for the label.
type HEBlock struct {
	// Rows is the number of samples in the block; the other slots hold 0.
	Rows int
	// Features holds one marshalled ciphertext per feature, in feature order.
	Features [][]byte
	// Label holds the marshalled ciphertext of the labels; nil when the input names no label.
	Label []byte
}

// ReadHEBatches reads in.Rows to its end as an HE batch stream of layout HELayoutColumnsV1 and checks
// it: the schema's columns and metadata, the parameters' digest against in.HE, the features against
// in.Features, and every block complete and in order (a label ciphertext in each block when in.Label
// is set, none otherwise). The ciphertexts are copied out of the stream; unmarshal them with the
// job's parameters. Errors wrap ErrInput and say which block and column is at fault. ReadHEBatches
// stops with the context's error when ctx ends.
func ReadHEBatches(ctx context.Context, in *TrainInput) (*HEBatches, error) {
	if in.Rows == nil || in.HE == nil {
		return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("mode %q has no HE batches (rows or HE context missing)", in.Mode)}
	}
	schema := in.Rows.Schema()
	for i, f := range heBatchFields {
		if schema.NumFields() != len(heBatchFields) || !arrow.TypeEqual(schema.Field(i).Type, f.Type) || schema.Field(i).Name != f.Name {
			return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("HE batch schema is %s; want the columns %s int32, %s int32, %s utf8, %s binary",
				schema, HEColBlock, HEColRows, HEColColumn, HEColCiphertext)}
		}
	}
	m, err := ParseHEBatchMeta(schema.Metadata())
	if err != nil {
		return nil, err
	}
	if want := hex.EncodeToString(in.HE.Parameters().Digest); m.ParamsDigest != want {
		return nil, &Error{Column: MetaHEParamsDigest, Err: ErrInput, Detail: "the batches were encrypted under other parameters than the job's HE context"}
	}
	if len(m.Features) != len(in.Features) {
		return nil, &Error{Column: MetaHEFeatures, Err: ErrInput, Detail: fmt.Sprintf("the batches hold %d features, the job names %d", len(m.Features), len(in.Features))}
	}
	for j, f := range in.Features {
		if m.Features[j] != f {
			return nil, &Error{Column: MetaHEFeatures, Err: ErrInput, Detail: fmt.Sprintf("feature %d of the batches is %q, the job names %q", j, m.Features[j], f)}
		}
	}
	withLabel := in.Label != ""
	perBlock := len(m.Features)
	if withLabel {
		perBlock++
	}
	out := &HEBatches{Features: m.Features, Bounds: m.Bounds, Rows: m.Rows, Slots: m.Slots, ParamsDigest: m.ParamsDigest}
	nb := m.Blocks()
	out.Blocks = make([]HEBlock, 0, nb)
	next := 0 // index of the next expected ciphertext, block-major
	for in.Rows.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := in.Rows.Record()
		blk, _ := rec.Column(0).(*array.Int32)
		rws, _ := rec.Column(1).(*array.Int32)
		col, _ := rec.Column(2).(*array.String)
		cts, _ := rec.Column(3).(*array.Binary)
		if blk == nil || rws == nil || col == nil || cts == nil {
			return nil, &Error{Err: ErrInput, Detail: "HE batch record does not have the schema's column types"}
		}
		for i := range int(rec.NumRows()) {
			b, k := next/perBlock, next%perBlock
			want := HELabel
			if k < len(m.Features) {
				want = m.Features[k]
			}
			where := func(format string, args ...any) error {
				return &Error{Column: want, Err: ErrInput, Detail: fmt.Sprintf("HE batch block %d: ", b) + fmt.Sprintf(format, args...)}
			}
			if b >= nb {
				return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("HE batches: more ciphertexts than the %d blocks of %d samples hold", nb, m.Rows)}
			}
			if blk.IsNull(i) || rws.IsNull(i) || col.IsNull(i) || cts.IsNull(i) {
				return nil, where("a null value in the ciphertext's row")
			}
			if got := col.Value(i); got != want {
				return nil, where("found column %.300q; want the features in model order, then %q", got, HELabel)
			}
			if got := int(blk.Value(i)); got != b {
				return nil, where("found block %d; blocks must come in order, each complete", got)
			}
			if got, w := int(rws.Value(i)), m.BlockRows(b); got != w {
				return nil, where("%d samples, but %d samples in blocks of %d slots put %d in this block", got, m.Rows, m.Slots, w)
			}
			ct := cts.Value(i)
			if len(ct) == 0 {
				return nil, where("empty ciphertext")
			}
			if k == 0 {
				out.Blocks = append(out.Blocks, HEBlock{Rows: m.BlockRows(b), Features: make([][]byte, len(m.Features))})
			}
			c := append([]byte(nil), ct...)
			if k < len(m.Features) {
				out.Blocks[b].Features[k] = c
			} else {
				out.Blocks[b].Label = c
			}
			next++
		}
	}
	if err := in.Rows.Err(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("sdk: reading HE batches: %w", err)
	}
	if next != nb*perBlock {
		return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("HE batches end after %d of %d ciphertexts (%d blocks of %d)", next, nb*perBlock, nb, perBlock)}
	}
	return out, nil
}
