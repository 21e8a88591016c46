package connectors

import (
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"

	"insitu/connectors/catalog"
)

// SubjectColumnName is the name of the first column of every record: the subject's canonical identifier.
const SubjectColumnName = "subject_id"

// Arrow field metadata keys (see the package documentation).
const (
	MetaItem        = "insitu.item"        // catalog item key, or "custom"
	MetaField       = "insitu.field"       // field key within the item
	MetaType        = "insitu.type"        // catalog type: int, float, bool, date, string, enum, id
	MetaUnit        = "insitu.unit"        // unit, e.g. CNY; empty when none
	MetaProvider    = "insitu.provider"    // the source's provider key
	MetaSource      = "insitu.source"      // the source's name
	MetaSensitivity = "insitu.sensitivity" // 1 public, 2 confidential, 3 personal
	MetaIDKind      = "insitu.id_kind"     // identifier kind of the subject column and of id fields
	MetaRole        = "insitu.role"        // identifier, descriptive or feature
	MetaNameZH      = "insitu.name_zh"     // the field's Chinese name
	MetaNameEN      = "insitu.name_en"     // the field's English name
	MetaFormat      = "insitu.format"      // schema metadata: the source's format
)

// arrowType returns the Arrow type of a catalog type.
func arrowType(t catalog.FieldType) arrow.DataType {
	switch t {
	case catalog.TypeInt:
		return arrow.PrimitiveTypes.Int64
	case catalog.TypeFloat:
		return arrow.PrimitiveTypes.Float64
	case catalog.TypeBool:
		return arrow.FixedWidthTypes.Boolean
	case catalog.TypeDate:
		return arrow.FixedWidthTypes.Date32
	default:
		return arrow.BinaryTypes.String
	}
}

// schema returns the Arrow schema of the records a plan produces.
func (pl *plan) schema() *arrow.Schema {
	m := pl.m
	fields := make([]arrow.Field, 0, 1+len(pl.fields))
	fields = append(fields, arrow.Field{
		Name: SubjectColumnName, Type: arrow.BinaryTypes.String, Nullable: false,
		Metadata: arrow.NewMetadata(
			[]string{MetaIDKind, MetaProvider, MetaSource, MetaSensitivity},
			[]string{string(pl.subjectKind), m.Provider, m.Source, strconv.Itoa(subjectSensitivity(pl))}),
	})
	for _, fs := range pl.fields {
		f := fs.field
		keys := []string{MetaItem, MetaField, MetaType, MetaUnit, MetaProvider, MetaSource, MetaSensitivity, MetaRole, MetaNameZH, MetaNameEN}
		vals := []string{fs.item, f.Key, string(f.Type), f.Unit, m.Provider, m.Source, strconv.Itoa(int(f.Sensitivity)), string(f.Role), f.NameZH, f.NameEN}
		if f.Type == catalog.TypeID {
			keys = append(keys, MetaIDKind)
			vals = append(vals, f.IDKind)
		}
		fields = append(fields, arrow.Field{Name: fs.name, Type: arrowType(f.Type), Nullable: true, Metadata: arrow.NewMetadata(keys, vals)})
	}
	md := arrow.NewMetadata([]string{MetaSource, MetaProvider, MetaFormat}, []string{m.Source, m.Provider, m.Format})
	return arrow.NewSchema(fields, &md)
}

func subjectSensitivity(pl *plan) int {
	if pl.subjectKind.Personal() {
		return int(catalog.Personal)
	}
	return int(catalog.Public)
}

// Schema returns the Arrow schema of the records Open produces for this mapping, checking the mapping
// against cat (catalog.Default when nil).
func (m *Mapping) Schema(cat *catalog.Catalog) (*arrow.Schema, error) {
	if cat == nil {
		cat = catalog.Default()
	}
	pl, err := m.plan(cat)
	if err != nil {
		return nil, err
	}
	return pl.schema(), nil
}
