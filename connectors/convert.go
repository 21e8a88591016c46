package connectors

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	metro "github.com/dgryski/go-metro"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
)

// cellKind is the kind of a typed source value.
type cellKind uint8

const (
	cNull cellKind = iota
	cString
	cInt
	cFloat
	cBool
	cDate // i holds days since 1970-01-01
)

// cell is one value of a typed source (Parquet, Arrow, PostgreSQL).
type cell struct {
	k cellKind
	s string
	i int64
	f float64
	b bool
}

// text returns the cell as the text a user would recognise, for conversions and messages.
func (c cell) text() string {
	switch c.k {
	case cString:
		return c.s
	case cInt:
		return strconv.FormatInt(c.i, 10)
	case cFloat:
		return strconv.FormatFloat(c.f, 'f', -1, 64)
	case cBool:
		return strconv.FormatBool(c.b)
	case cDate:
		return time.Unix(c.i*86400, 0).UTC().Format("2006-01-02")
	}
	return ""
}

func (c cell) kindName() string {
	return [...]string{"null", "text", "integer", "number", "boolean", "date"}[c.k]
}

// cellErr is why one value is invalid.
type cellErr struct {
	rule  string
	msg   string
	cause error
}

// colBuf holds one output column of a converted chunk, with the chunk's statistics of the column.
type colBuf struct {
	ok   []bool // non-null and valid
	i64  []int64
	f64  []float64
	b    []bool
	d32  []arrow.Date32
	s    []string
	hash []uint64 // hash of each valid value, for the distinct count

	nulls, valid, invalid int64
	min, max              float64
	hasMinMax             bool
}

func newColBuf(t catalog.FieldType, n int) *colBuf {
	c := &colBuf{ok: make([]bool, n), hash: make([]uint64, 0, n)}
	switch t {
	case catalog.TypeInt:
		c.i64 = make([]int64, n)
	case catalog.TypeFloat:
		c.f64 = make([]float64, n)
	case catalog.TypeBool:
		c.b = make([]bool, n)
	case catalog.TypeDate:
		c.d32 = make([]arrow.Date32, n)
	default:
		c.s = make([]string, n)
	}
	return c
}

// reset clears the buffer for a chunk of n rows; values of earlier chunks are zeroed so that none
// can end up behind a null of a later record.
func (c *colBuf) reset(n int) {
	c.ok = c.ok[:n]
	clear(c.ok)
	switch {
	case c.i64 != nil:
		c.i64 = c.i64[:n]
		clear(c.i64)
	case c.f64 != nil:
		c.f64 = c.f64[:n]
		clear(c.f64)
	case c.b != nil:
		c.b = c.b[:n]
		clear(c.b)
	case c.d32 != nil:
		c.d32 = c.d32[:n]
		clear(c.d32)
	default:
		c.s = c.s[:n]
		clear(c.s)
	}
	c.hash = c.hash[:0]
	c.nulls, c.valid, c.invalid = 0, 0, 0
	c.min, c.max, c.hasMinMax = 0, 0, false
}

func (c *colBuf) minmax(v float64) {
	if !c.hasMinMax {
		c.min, c.max, c.hasMinMax = v, v, true
		return
	}
	c.min = math.Min(c.min, v)
	c.max = math.Max(c.max, v)
}

// fmix64 is MurmurHash3's finaliser: a bijection that spreads every input bit over the output.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

const hashSeed = 0x696e73697475 // "insitu"

func hashString(s string) uint64 { return metro.Hash64Str(s, hashSeed) }

// str converts one text value into row i of dst. null says the value is one of the null strings.
func (fs *fieldSpec) str(raw string, null bool, dst *colBuf, i int) *cellErr {
	if null {
		dst.nulls++
		return nil
	}
	t := fs.field.Type
	var e *cellErr
	switch t {
	case catalog.TypeInt:
		var v int64
		if v, e = fs.parseInt(strings.TrimSpace(raw)); e == nil {
			dst.i64[i] = v
			dst.hash = append(dst.hash, fmix64(uint64(v)))
			dst.minmax(float64(v))
		}
	case catalog.TypeFloat:
		var v float64
		if v, e = fs.parseFloat(strings.TrimSpace(raw)); e == nil {
			dst.f64[i] = v
			dst.hash = append(dst.hash, fmix64(math.Float64bits(v+0))) // +0 folds -0 into 0
			dst.minmax(v)
		}
	case catalog.TypeBool:
		k := strings.TrimSpace(raw)
		switch {
		case spelled(fs.trueList, k):
			dst.b[i] = true
			dst.hash = append(dst.hash, fmix64(1))
		case spelled(fs.falseList, k):
			dst.b[i] = false
			dst.hash = append(dst.hash, fmix64(2))
		default:
			e = &cellErr{rule: RuleBool, msg: fmt.Sprintf("%q is not one of the spellings of true (%s) or false (%s)",
				raw, joinKeys(fs.trues), joinKeys(fs.falses))}
		}
	case catalog.TypeDate:
		var days int32
		if days, e = fs.parseDate(strings.TrimSpace(raw)); e == nil {
			dst.d32[i] = arrow.Date32(days)
			dst.hash = append(dst.hash, fmix64(uint64(days)))
			dst.minmax(float64(days))
		}
	case catalog.TypeEnum:
		v := strings.TrimSpace(raw)
		if fs.enum[v] {
			dst.s[i] = v
			dst.hash = append(dst.hash, hashString(v))
		} else {
			e = &cellErr{rule: RuleEnum, msg: fmt.Sprintf("%q is not one of %s", fs.shown(raw), strings.Join(fs.field.Values, ", "))}
		}
	case catalog.TypeID:
		v, err := ident.Normalize(fs.idKind, raw)
		if err != nil {
			e = identErr(err)
		} else {
			dst.s[i] = v
			dst.hash = append(dst.hash, hashString(v))
		}
	default:
		if !utf8.ValidString(raw) {
			e = &cellErr{rule: RuleUTF8, msg: "the value is not valid UTF-8 text"}
		} else {
			dst.s[i] = raw
			dst.hash = append(dst.hash, hashString(raw))
		}
	}
	if e != nil {
		dst.invalid++
		return e
	}
	dst.ok[i] = true
	dst.valid++
	return nil
}

// shown is a value as it may appear in a message: masked when the field is personal.
func (fs *fieldSpec) shown(raw string) string {
	if fs.personal {
		return ident.Mask(raw)
	}
	return raw
}

// spelled reports whether s is one of the lower-cased spellings, ignoring case.
func spelled(list []string, s string) bool {
	for _, t := range list {
		if len(t) == len(s) && strings.EqualFold(t, s) {
			return true
		}
	}
	return false
}

func identErr(err error) *cellErr {
	var ie *ident.Error
	if errors.As(err, &ie) {
		return &cellErr{rule: ie.Rule, msg: fmt.Sprintf("invalid %s %q: %s", ie.Kind, ie.Value, ie.Detail), cause: err}
	}
	return &cellErr{rule: ident.RuleCharset, msg: err.Error(), cause: err}
}

func joinKeys(m map[string]bool) string {
	var out []string
	for _, s := range []string{"true", "1", "yes", "y", "t", "是", "false", "0", "no", "n", "f", "否"} {
		if m[s] {
			out = append(out, s)
		}
	}
	if len(out) < len(m) {
		out = out[:0]
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
	}
	return strings.Join(out, "/")
}

func (fs *fieldSpec) parseInt(s string) (int64, *cellErr) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		overflow := errors.Is(ferr, strconv.ErrRange)
		switch {
		case ferr != nil && !overflow, math.IsNaN(f), math.IsInf(f, 0) && !overflow:
			return 0, &cellErr{rule: RuleNumber, msg: fmt.Sprintf("%q is not a number", s)}
		case math.IsInf(f, 0) || f >= 1<<63 || f < -(1<<63):
			return 0, &cellErr{rule: RuleRange, msg: fmt.Sprintf("%s is beyond the 64-bit integer range", s)}
		case ferr != nil || f != math.Trunc(f):
			return 0, &cellErr{rule: RuleInteger, msg: fmt.Sprintf("%s is not a whole number", s)}
		}
		v = int64(f)
	}
	if fs.scale != 1 {
		f := float64(v) * fs.scale
		if f != math.Trunc(f) || f >= 1<<63 || f < -(1<<63) {
			return 0, &cellErr{rule: RuleInteger, msg: fmt.Sprintf("%s × scale %g = %g is not a whole number", s, fs.scale, f)}
		}
		v = int64(f)
	}
	if e := fs.checkRange(float64(v), s); e != nil {
		return 0, e
	}
	return v, nil
}

func (fs *fieldSpec) parseFloat(s string) (float64, *cellErr) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &cellErr{rule: RuleNumber, msg: fmt.Sprintf("%q is not a finite number", s)}
	}
	f *= fs.scale
	if math.IsInf(f, 0) {
		return 0, &cellErr{rule: RuleNumber, msg: fmt.Sprintf("%s × scale %g is not a finite number", s, fs.scale)}
	}
	if e := fs.checkRange(f, s); e != nil {
		return 0, e
	}
	return f, nil
}

func (fs *fieldSpec) checkRange(v float64, s string) *cellErr {
	f := fs.field
	below := f.Min != nil && v < *f.Min
	if !below && (f.Max == nil || v <= *f.Max) {
		return nil
	}
	shown := strconv.FormatFloat(v, 'g', -1, 64)
	if fs.scale != 1 {
		shown = fmt.Sprintf("%s (%s × scale %g)", shown, s, fs.scale)
	}
	if below {
		return &cellErr{rule: RuleRange, msg: fmt.Sprintf("%s is below the minimum %g of %s", shown, *f.Min, fs.name)}
	}
	return &cellErr{rule: RuleRange, msg: fmt.Sprintf("%s is above the maximum %g of %s", shown, *f.Max, fs.name)}
}

func (fs *fieldSpec) parseDate(s string) (int32, *cellErr) {
	switch fs.dateLayout {
	case "2006-01-02":
		if len(s) == 10 && s[4] == '-' && s[7] == '-' {
			if d, ok := parseYMD(s[0:4], s[5:7], s[8:10]); ok {
				return d, nil
			}
		}
	case "20060102":
		if len(s) == 8 {
			if d, ok := parseYMD(s[0:4], s[4:6], s[6:8]); ok {
				return d, nil
			}
		}
	default:
		if t, err := time.Parse(fs.dateLayout, s); err == nil {
			return daysOf(t), nil
		}
	}
	return 0, &cellErr{rule: RuleDate, msg: fmt.Sprintf("%q is not a date in the layout %s", fs.shown(s), fs.dateLayout)}
}

func daysOf(t time.Time) int32 {
	y, m, d := t.Date()
	return daysFromCivil(y, int(m), d)
}

// parseYMD parses the digits of a year, month and day without allocating.
func parseYMD(ys, ms, ds string) (int32, bool) {
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(ys)
	m, ok2 := num(ms)
	d, ok3 := num(ds)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// algorithm).
func daysFromCivil(y, m, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}

// fromCell converts one typed value into row i of dst.
func (fs *fieldSpec) fromCell(c cell, dst *colBuf, i int) *cellErr {
	t := fs.field.Type
	switch c.k {
	case cNull:
		return fs.str("", true, dst, i)
	case cString:
		return fs.str(c.s, t != catalog.TypeString && strings.TrimSpace(c.s) == "", dst, i)
	}
	typeErr := func() *cellErr {
		dst.invalid++
		return &cellErr{rule: RuleType, msg: fmt.Sprintf("a %s value (%s) cannot fill the %s field %s", c.kindName(), fs.shown(c.text()), t, fs.name)}
	}
	switch t {
	case catalog.TypeInt:
		switch c.k {
		case cInt:
			if fs.scale == 1 {
				if e := fs.checkRange(float64(c.i), c.text()); e != nil {
					dst.invalid++
					return e
				}
				dst.i64[i] = c.i
				dst.hash = append(dst.hash, fmix64(uint64(c.i)))
				dst.minmax(float64(c.i))
				dst.ok[i] = true
				dst.valid++
				return nil
			}
			return fs.str(c.text(), false, dst, i)
		case cFloat:
			return fs.str(strconv.FormatFloat(c.f, 'g', -1, 64), false, dst, i)
		case cBool:
			return fs.str(map[bool]string{true: "1", false: "0"}[c.b], false, dst, i)
		}
		return typeErr()
	case catalog.TypeFloat:
		switch c.k {
		case cInt, cFloat:
			v := c.f
			if c.k == cInt {
				v = float64(c.i)
			}
			return fs.str(strconv.FormatFloat(v, 'g', -1, 64), false, dst, i)
		}
		return typeErr()
	case catalog.TypeBool:
		switch c.k {
		case cBool:
			dst.b[i] = c.b
			dst.hash = append(dst.hash, fmix64(map[bool]uint64{true: 1, false: 2}[c.b]))
			dst.ok[i] = true
			dst.valid++
			return nil
		case cInt, cFloat:
			return fs.str(c.text(), false, dst, i)
		}
		return typeErr()
	case catalog.TypeDate:
		if c.k == cDate {
			dst.d32[i] = arrow.Date32(c.i)
			dst.hash = append(dst.hash, fmix64(uint64(c.i)))
			dst.minmax(float64(c.i))
			dst.ok[i] = true
			dst.valid++
			return nil
		}
		return typeErr()
	default: // string, enum, id
		if c.k == cFloat && c.f != math.Trunc(c.f) && t == catalog.TypeID {
			return typeErr()
		}
		return fs.str(c.text(), false, dst, i)
	}
}
