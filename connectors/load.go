package connectors

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
)

// Formats a mapping's format may name.
const (
	FormatCSV         = "csv"
	FormatParquet     = "parquet"
	FormatArrow       = "arrow"        // Arrow IPC file
	FormatArrowStream = "arrow-stream" // Arrow IPC stream
	FormatPostgres    = "postgres"
)

// Formats lists every format in the order the documentation gives them.
var Formats = []string{FormatCSV, FormatParquet, FormatArrow, FormatArrowStream, FormatPostgres}

// DefaultDSNEnv is the environment variable a postgres source reads its connection string from when
// the mapping names none.
const DefaultDSNEnv = "INSITU_POSTGRES_DSN"

// Dataset classes of DatasetSpec.Class.
const (
	ClassPlatform  = "platform"
	ClassPublic    = "public"
	ClassSynthetic = "synthetic"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	posColRE = regexp.MustCompile(`^#[1-9][0-9]{0,5}$`)
)

// LoadMapping reads and checks a mapping file against the embedded catalog (catalog.Default). Every
// error is a *MappingError naming the file, the YAML line and the key path.
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &MappingError{File: path, Message: "cannot read the mapping file", Err: err}
	}
	return ParseMapping(data, path, catalog.Default())
}

// ParseMapping reads and checks a mapping from YAML. file names it in errors, and its folder is the one
// relative paths resolve against. Unknown keys are errors; fields are checked against cat.
func ParseMapping(data []byte, file string, cat *catalog.Catalog) (*Mapping, error) {
	var m Mapping
	doc, err := decodeStrict(file, data, &m)
	if err != nil {
		return nil, err
	}
	m.dir = filepath.Dir(file)
	m.file = file
	m.doc = doc
	if _, err := m.plan(cat); err != nil {
		return nil, err
	}
	return &m, nil
}

// File returns the mapping file the mapping was read from; empty for a mapping built in Go.
func (m *Mapping) File() string { return m.file }

// ResolvedPath returns the source file's path: Path resolved against the mapping file's folder unless
// it is absolute. It is empty for postgres sources.
func (m *Mapping) ResolvedPath() string {
	if m.Path == "" || filepath.IsAbs(m.Path) || m.dir == "" {
		return m.Path
	}
	return filepath.Join(m.dir, m.Path)
}

// SubjectKind returns the identifier kind of the subject column. It is valid once the mapping passed
// its checks (LoadMapping, ParseMapping or Open).
func (m *Mapping) SubjectKind() ident.Kind { return ident.Kind(m.Subject.Kind) }

// fieldSpec is one mapped column, resolved against the catalog.
type fieldSpec struct {
	path       string // key path in the mapping, e.g. "columns[2]"
	name       string // output column name: "<item>.<field>" or "custom.<key>"
	item       string // the item key, or "custom"
	field      *catalog.Field
	column     string // source column
	scale      float64
	dateLayout string
	trues      map[string]bool // lower-cased spellings
	falses     map[string]bool
	trueList   []string // the same spellings, for fast lookups
	falseList  []string
	enum       map[string]bool
	idKind     ident.Kind
	personal   bool // values are masked in errors
}

// plan is a checked mapping: the subject kind and the resolved field of every mapped column.
type plan struct {
	m           *Mapping
	subjectKind ident.Kind
	fields      []*fieldSpec
}

var defaultTrue = []string{"true", "1", "yes", "y", "t", "是"}
var defaultFalse = []string{"false", "0", "no", "n", "f", "否"}

// plan checks the mapping against cat and resolves its fields.
func (m *Mapping) plan(cat *catalog.Catalog) (*plan, error) {
	d := m.doc
	if d == nil {
		d = &yamlDoc{file: m.file}
		if d.file == "" {
			d.file = "mapping of source " + strconv.Quote(m.Source)
		}
	}
	if !nameRE.MatchString(m.Source) {
		return nil, d.errf("source", "source name %q: use 1 to 64 lower-case letters, digits, '_' and '-'", m.Source)
	}
	if !nameRE.MatchString(m.Provider) {
		return nil, d.errf("provider", "provider key %q: use 1 to 64 lower-case letters, digits, '_' and '-' (e.g. zhejiang_tax_bureau)", m.Provider)
	}
	switch m.Format {
	case FormatCSV, FormatParquet, FormatArrow, FormatArrowStream:
		if m.Path == "" {
			return nil, d.errf("path", "a %s source needs a path (the file, relative to the mapping file)", m.Format)
		}
		if m.Query != "" || m.DSNEnv != "" {
			return nil, d.errf(firstGiven(d, "query", "dsn_env"), "query and dsn_env are for postgres sources only")
		}
	case FormatPostgres:
		if strings.TrimSpace(m.Query) == "" {
			return nil, d.errf("query", "a postgres source needs a query (a SELECT statement)")
		}
		if m.Path != "" {
			return nil, d.errf("path", "a postgres source has no path: its rows come from query")
		}
		if m.DSNEnv != "" && !envRE.MatchString(m.DSNEnv) {
			return nil, d.errf("dsn_env", "%q is not an environment variable name", m.DSNEnv)
		}
	default:
		return nil, d.errf("format", "unknown format %q (want one of %s)", m.Format, strings.Join(Formats, ", "))
	}
	if m.CSV != nil {
		if m.Format != FormatCSV {
			return nil, d.errf("csv", "csv options given for a %s source", m.Format)
		}
		if m.CSV.Delimiter != "" {
			r, n := utf8.DecodeRuneInString(m.CSV.Delimiter)
			if n != len(m.CSV.Delimiter) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
				return nil, d.errf("csv.delimiter", "delimiter %q must be one character other than a quote or a line break", m.CSV.Delimiter)
			}
		}
	}

	if m.Subject.Column == "" {
		return nil, d.errf("subject.column", "the subject needs a column: the source column that identifies each row's subject")
	}
	kind, err := ident.ParseKind(m.Subject.Kind)
	if err != nil {
		return nil, d.errf("subject.kind", "%v", err)
	}
	if m.Subject.RelatedPersons && kind != ident.KindUSCC {
		return nil, d.errf("subject.related_persons", "related_persons is for sources keyed by credit code (kind uscc), and this one is keyed by %s", kind)
	}

	customs := map[string]*catalog.Field{}
	usedCustom := map[string]bool{}
	for i := range m.CustomFields {
		cf := &m.CustomFields[i]
		p := fmt.Sprintf("custom_fields[%d]", i)
		f := cf.field()
		if err := catalog.CheckField(f); err != nil {
			return nil, d.errf(p, "custom field %q: %v", cf.Key, err)
		}
		if customs[cf.Key] != nil {
			return nil, d.errf(p+".key", "custom field %q declared twice", cf.Key)
		}
		customs[cf.Key] = f
	}

	if len(m.Columns) == 0 {
		return nil, d.errf("columns", "no columns mapped: list at least one source column and its field")
	}
	pl := &plan{m: m, subjectKind: kind}
	seenCol := map[string]string{}
	seenField := map[string]string{}
	for i := range m.Columns {
		c := &m.Columns[i]
		p := fmt.Sprintf("columns[%d]", i)
		if c.Column == "" {
			return nil, d.errf(p+".column", "the source column's name is missing")
		}
		if prev, dup := seenCol[c.Column]; dup {
			return nil, d.errf(p+".column", "column %q is already mapped at %s: map each column once", c.Column, prev)
		}
		seenCol[c.Column] = p
		itemKey, fieldKey, ok := strings.Cut(c.Field, ".")
		if !ok || itemKey == "" || fieldKey == "" {
			return nil, d.errf(p+".field", "field %q: write <item>.<field> for a catalog field or custom.<key> for a custom field", c.Field)
		}
		fs := &fieldSpec{path: p, name: c.Field, item: itemKey, column: c.Column}
		if itemKey == "custom" {
			fs.field = customs[fieldKey]
			if fs.field == nil {
				return nil, d.errf(p+".field", "custom field %q is not declared: add it under custom_fields", fieldKey)
			}
			usedCustom[fieldKey] = true
		} else {
			it, f, err := cat.Field(itemKey, fieldKey)
			if err != nil {
				return nil, d.errf(p+".field", "%q is not a field of the catalog (%v): see `insitu catalog`, or declare a custom field", c.Field, err)
			}
			related := m.Subject.RelatedPersons && kind == ident.KindUSCC && it.Subject == catalog.SubjectPerson
			if want := itemSubjectKind(it.Subject); kind != ident.KindOpaque && want != "" && want != kind && !related {
				hint := ""
				if kind == ident.KindUSCC && it.Subject == catalog.SubjectPerson {
					hint = " (set subject.related_persons: true if each row is an enterprise carrying this item about its owner or legal representative)"
				}
				return nil, d.errf(p+".field", "item %q is about a %s (keyed by %s), but the subject column holds %s identifiers%s", itemKey, it.Subject, want, kind, hint)
			}
			fs.field = f
		}
		if prev, dup := seenField[c.Field]; dup {
			return nil, d.errf(p+".field", "field %q is already mapped at %s: map each field once", c.Field, prev)
		}
		seenField[c.Field] = p
		if err := fs.setOptions(c, d, p); err != nil {
			return nil, err
		}
		pl.fields = append(pl.fields, fs)
	}
	for i, cf := range m.CustomFields {
		if !usedCustom[cf.Key] {
			return nil, d.errf(fmt.Sprintf("custom_fields[%d]", i), "custom field %q is declared but no column maps to it", cf.Key)
		}
	}
	return pl, nil
}

func firstGiven(d *yamlDoc, paths ...string) string {
	for _, p := range paths {
		if d.has(p) {
			return p
		}
	}
	return paths[0]
}

func itemSubjectKind(s catalog.Subject) ident.Kind {
	switch s {
	case catalog.SubjectEnterprise:
		return ident.KindUSCC
	case catalog.SubjectPerson:
		return ident.KindResidentID
	}
	return ""
}

// field returns the catalog form of a custom field, with the mapping's defaults filled in.
func (cf *CustomField) field() *catalog.Field {
	sens := catalog.Sensitivity(cf.Sensitivity)
	if cf.Sensitivity == 0 {
		sens = catalog.Confidential
	}
	f := &catalog.Field{
		Key: cf.Key, NameZH: cf.NameZH, NameEN: cf.NameEN, Type: catalog.FieldType(cf.Type), Unit: cf.Unit,
		Values: cf.Values, IDKind: cf.IDKind, Min: cf.Min, Max: cf.Max, Sensitivity: sens,
		Role: catalog.FieldRole(cf.Role), Description: cf.Description,
	}
	if f.Role == "" {
		switch f.Type {
		case catalog.TypeID:
			f.Role = catalog.RoleIdentifier
		case catalog.TypeString:
			f.Role = catalog.RoleDescriptive
		default:
			f.Role = catalog.RoleFeature
		}
	}
	return f
}

func (fs *fieldSpec) setOptions(c *ColumnMapping, d *yamlDoc, p string) error {
	t := fs.field.Type
	fs.scale = 1
	if c.Scale != 0 || d.has(p+".scale") {
		if !t.Numeric() {
			return d.errf(p+".scale", "scale is for int and float fields, and %s is a %s field", fs.name, t)
		}
		if !(c.Scale > 0) || math.IsInf(c.Scale, 0) {
			return d.errf(p+".scale", "scale must be a positive number (e.g. 10000 for a source in 万元), got %g", c.Scale)
		}
		fs.scale = c.Scale
	}
	fs.dateLayout = "2006-01-02"
	if c.DateFormat != "" {
		if t != catalog.TypeDate {
			return d.errf(p+".date_format", "date_format is for date fields, and %s is a %s field", fs.name, t)
		}
		ref := time.Date(2001, 12, 31, 0, 0, 0, 0, time.UTC)
		got, err := time.Parse(c.DateFormat, ref.Format(c.DateFormat))
		if err != nil || !got.Equal(ref) {
			return d.errf(p+".date_format", "date_format %q is not a Go date layout with year, month and day (e.g. 2006-01-02, 20060102, 2006/01/02)", c.DateFormat)
		}
		fs.dateLayout = c.DateFormat
	}
	if len(c.True) > 0 || len(c.False) > 0 {
		if t != catalog.TypeBool {
			return d.errf(firstGiven(d, p+".true", p+".false"), "true and false spellings are for bool fields, and %s is a %s field", fs.name, t)
		}
	}
	if t == catalog.TypeBool {
		trues, falses := c.True, c.False
		if len(trues) == 0 {
			trues = defaultTrue
		}
		if len(falses) == 0 {
			falses = defaultFalse
		}
		fs.trues, fs.falses = map[string]bool{}, map[string]bool{}
		for _, s := range trues {
			if strings.TrimSpace(s) == "" {
				return d.errf(p+".true", "an empty spelling of true: missing values are nulls, not booleans")
			}
			fs.trues[strings.ToLower(strings.TrimSpace(s))] = true
		}
		for _, s := range falses {
			k := strings.ToLower(strings.TrimSpace(s))
			if k == "" {
				return d.errf(p+".false", "an empty spelling of false: missing values are nulls, not booleans")
			}
			if fs.trues[k] {
				return d.errf(p+".false", "%q is listed both as true and as false", s)
			}
			fs.falses[k] = true
		}
		for k := range fs.trues {
			fs.trueList = append(fs.trueList, k)
		}
		for k := range fs.falses {
			fs.falseList = append(fs.falseList, k)
		}
	}
	if t == catalog.TypeEnum {
		fs.enum = map[string]bool{}
		for _, v := range fs.field.Values {
			fs.enum[v] = true
		}
	}
	if t == catalog.TypeID {
		fs.idKind = ident.Kind(fs.field.IDKind)
	}
	fs.personal = fs.field.Sensitivity >= catalog.Personal || fs.idKind.Personal()
	return nil
}

// LoadDatasetSpec reads a dataset spec and the mapping files it lists (relative to the spec's folder
// unless absolute), checking each mapping against the embedded catalog, that source names are unique,
// that no field is mapped by two sources, and that every source's subject kind is the spec's.
func LoadDatasetSpec(path string) (*DatasetSpec, []*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &MappingError{File: path, Message: "cannot read the dataset spec", Err: err}
	}
	var s DatasetSpec
	d, err := decodeStrict(path, data, &s)
	if err != nil {
		return nil, nil, err
	}
	if !nameRE.MatchString(s.Dataset) {
		return nil, nil, d.errf("dataset", "dataset name %q: use 1 to 64 lower-case letters, digits, '_' and '-'", s.Dataset)
	}
	switch s.Class {
	case ClassPlatform, ClassPublic, ClassSynthetic:
	default:
		return nil, nil, d.errf("class", "class %q is not platform, public or synthetic", s.Class)
	}
	kind, err := ident.ParseKind(s.Subject)
	if err != nil {
		return nil, nil, d.errf("subject", "%v", err)
	}
	if len(s.Mappings) == 0 {
		return nil, nil, d.errf("mappings", "no mappings: list the mapping file of each source")
	}
	dir := filepath.Dir(path)
	var out []*Mapping
	sources := map[string]string{}
	fields := map[string]string{}
	files := map[string]string{}
	for i, mp := range s.Mappings {
		p := fmt.Sprintf("mappings[%d]", i)
		if mp == "" {
			return nil, nil, d.errf(p, "empty mapping path")
		}
		full := mp
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, mp)
		}
		if prev, dup := files[filepath.Clean(full)]; dup {
			return nil, nil, d.errf(p, "mapping %q is already listed at %s", mp, prev)
		}
		files[filepath.Clean(full)] = p
		m, err := LoadMapping(full)
		if err != nil {
			e := d.errf(p, "mapping %q: %v", mp, err)
			e.Err = err
			return nil, nil, e
		}
		if m.SubjectKind() != kind {
			return nil, nil, d.errf(p, "source %q is keyed by %s identifiers, but dataset %q by %s: every source of a dataset must identify the same kind of subject", m.Source, m.Subject.Kind, s.Dataset, kind)
		}
		if prev, dup := sources[m.Source]; dup {
			return nil, nil, d.errf(p, "source name %q is also used by %s: source names are unique within a dataset", m.Source, prev)
		}
		sources[m.Source] = p
		for _, c := range m.Columns {
			if prev, dup := fields[c.Field]; dup {
				return nil, nil, d.errf(p, "field %q of source %q is also mapped by %s: each field comes from one source", c.Field, m.Source, prev)
			}
			fields[c.Field] = fmt.Sprintf("%s (source %s)", p, m.Source)
		}
		out = append(out, m)
	}
	return &s, out, nil
}
