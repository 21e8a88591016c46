package features

import (
	"fmt"
	"math"
	"time"
)

// Kind is the type of a Column's values.
type Kind uint8

// The kinds of input column.
const (
	// Numeric columns hold float64 values; NaN counts as missing.
	Numeric Kind = iota + 1
	// Categorical columns hold strings (the empty string is a category like any other).
	Categorical
	// Date columns hold calendar days since 1970-01-01, as Arrow's date32 does.
	Date
)

var kindNames = map[Kind]string{Numeric: "numeric", Categorical: "categorical", Date: "date"}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText encodes the kind as "numeric", "categorical" or "date".
func (k Kind) MarshalText() ([]byte, error) {
	if _, ok := kindNames[k]; !ok {
		return nil, fmt.Errorf("features: unknown column kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes "numeric", "categorical" or "date".
func (k *Kind) UnmarshalText(b []byte) error {
	for kk, s := range kindNames {
		if s == string(b) {
			*k = kk
			return nil
		}
	}
	return fmt.Errorf("features: unknown column kind %q: use numeric, categorical or date", b)
}

// Column is one input column: a name, a kind and its values, with an optional missing mask.
//
// Exactly one of Values (Numeric), Strings (Categorical) or Days (Date) is used, as Kind says. Row i
// is missing when Missing[i] is true (a nil Missing means none is) or, for Numeric columns, when
// Values[i] is NaN. Infinite numeric values are an error, not missing. The values at missing rows are
// ignored. Transforms never modify a Column.
type Column struct {
	Name    string
	Kind    Kind
	Values  []float64 // Numeric
	Strings []string  // Categorical
	Days    []int32   // Date: days since 1970-01-01 (see DayNumber)
	Missing []bool    // nil, or one flag per row
}

// NumericColumn returns a Numeric column. missing may be nil.
func NumericColumn(name string, values []float64, missing []bool) Column {
	return Column{Name: name, Kind: Numeric, Values: values, Missing: missing}
}

// CategoricalColumn returns a Categorical column. missing may be nil.
func CategoricalColumn(name string, values []string, missing []bool) Column {
	return Column{Name: name, Kind: Categorical, Strings: values, Missing: missing}
}

// DateColumn returns a Date column of days since 1970-01-01. missing may be nil.
func DateColumn(name string, days []int32, missing []bool) Column {
	return Column{Name: name, Kind: Date, Days: days, Missing: missing}
}

// Len returns the number of rows.
func (c Column) Len() int {
	switch c.Kind {
	case Numeric:
		return len(c.Values)
	case Categorical:
		return len(c.Strings)
	case Date:
		return len(c.Days)
	}
	return 0
}

// IsMissing reports whether row i is missing.
func (c Column) IsMissing(i int) bool {
	if c.Missing != nil && c.Missing[i] {
		return true
	}
	return c.Kind == Numeric && math.IsNaN(c.Values[i])
}

// DayNumber returns the calendar date of t (in t's location) as days since 1970-01-01.
func DayNumber(t time.Time) int32 {
	y, m, d := t.Date()
	u := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return int32(u.Unix() / 86400)
}

// ParseDate parses an ISO date "YYYY-MM-DD" into days since 1970-01-01.
func ParseDate(s string) (int32, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("features: date %q is not YYYY-MM-DD: %w", s, err)
	}
	return DayNumber(t), nil
}
