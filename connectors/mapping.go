package connectors

// Mapping describes one source: where it is, who provided it, which column identifies the subject,
// and which catalog field (or declared custom field) each used column holds. It is read from YAML by
// LoadMapping; unknown keys are errors.
type Mapping struct {
	// Source names the source, unique within a dataset: lower-case letters, digits, '_' and '-'.
	Source string `yaml:"source"`
	// Provider is the key of the data provider (e.g. "zhejiang_tax_bureau"), used for usage reports.
	Provider string `yaml:"provider"`
	// ProviderName is the provider's human-readable name.
	ProviderName string `yaml:"provider_name,omitempty"`
	// Format is one of csv, parquet, arrow (IPC file), arrow-stream (IPC stream), postgres.
	Format string `yaml:"format"`
	// Path is the file, relative to the mapping file's folder unless absolute. Not for postgres.
	Path string `yaml:"path,omitempty"`
	// Query is the SELECT statement a postgres source runs.
	Query string `yaml:"query,omitempty"`
	// DSNEnv names the environment variable that holds the PostgreSQL connection string, so that no
	// password is written in a mapping file. Default INSITU_POSTGRES_DSN.
	DSNEnv string `yaml:"dsn_env,omitempty"`
	// CSV holds options for csv sources.
	CSV *CSVOptions `yaml:"csv,omitempty"`
	// Subject names the column that identifies the subject of each row, and its identifier kind.
	Subject SubjectColumn `yaml:"subject"`
	// Columns maps source columns to fields. Source columns not listed are ignored.
	Columns []ColumnMapping `yaml:"columns"`
	// CustomFields declares fields outside the annex (for example the columns of a public benchmark
	// data set); columns map to them as "custom.<key>".
	CustomFields []CustomField `yaml:"custom_fields,omitempty"`

	// dir is the folder of the mapping file; relative paths resolve against it.
	dir string
	// file is the mapping file as given to LoadMapping or ParseMapping.
	file string
	// doc holds the YAML line of each key, for errors found after loading.
	doc *yamlDoc
}

// CSVOptions are the options of a csv source.
type CSVOptions struct {
	// Delimiter is the field separator, one character. Default ",".
	Delimiter string `yaml:"delimiter,omitempty"`
	// Null lists the strings that mean a missing value. Default: "" and "NA".
	Null []string `yaml:"null,omitempty"`
	// Gzip reads the file through gzip. Default: true when Path ends in ".gz".
	Gzip *bool `yaml:"gzip,omitempty"`
}

// SubjectColumn identifies the subject of each row.
type SubjectColumn struct {
	// Column is the source column's name, or "#N" for the N-th column (from 1) of a source whose
	// header leaves that column's name empty.
	Column string `yaml:"column"`
	// Kind is the identifier kind: uscc, resident_id or opaque.
	Kind string `yaml:"kind"`
	// RelatedPersons lets an enterprise-keyed (uscc) source map items about natural persons related
	// to the enterprise — its owner or legal representative (categories 9, 11 and 17) — so that they
	// join the enterprise's row, each with the person's resident ID in the item's own id field.
	// Without it, items about persons need a resident_id subject.
	RelatedPersons bool `yaml:"related_persons,omitempty"`
}

// ColumnMapping maps one source column to one field.
type ColumnMapping struct {
	// Column is the source column's name as in the header (csv) or schema, or "#N" for the N-th
	// column (from 1) when the header leaves its name empty.
	Column string `yaml:"column"`
	// Field is "<item>.<field>" for a catalog field or "custom.<key>" for a declared custom field.
	Field string `yaml:"field"`
	// Scale multiplies numeric values on the way in, to convert the source's unit to the field's
	// (e.g. 10000 for a source in 万元 into a field in CNY). Default 1.
	Scale float64 `yaml:"scale,omitempty"`
	// DateFormat is the Go layout of date values in the source. Default "2006-01-02"; "20060102" and
	// "2006/01/02" are common alternatives.
	DateFormat string `yaml:"date_format,omitempty"`
	// True and False list the source's spellings of boolean values. Default: true/false, 1/0, yes/no,
	// Y/N, 是/否 (case-insensitive).
	True  []string `yaml:"true,omitempty"`
	False []string `yaml:"false,omitempty"`
}

// CustomField declares a field outside the annex.
type CustomField struct {
	Key    string   `yaml:"key"`
	NameZH string   `yaml:"name_zh,omitempty"`
	NameEN string   `yaml:"name_en,omitempty"`
	Type   string   `yaml:"type"` // int, float, bool, date, string, enum, id
	Unit   string   `yaml:"unit,omitempty"`
	Values []string `yaml:"values,omitempty"` // allowed values of an enum
	Min    *float64 `yaml:"min,omitempty"`
	Max    *float64 `yaml:"max,omitempty"`
	// Sensitivity: 1 public, 2 confidential (default), 3 personal.
	Sensitivity int `yaml:"sensitivity,omitempty"`
	// IDKind is the identifier kind of an id field: uscc, resident_id or opaque.
	IDKind string `yaml:"id_kind,omitempty"`
	// Role is identifier, descriptive or feature; by default set from the type as the catalog does.
	Role string `yaml:"role,omitempty"`
	// Description says what the field holds when its name alone does not.
	Description string `yaml:"description,omitempty"`
}

// DatasetSpec lists the sources of one dataset, so that `insitu ingest --spec FILE` ingests them
// together. Mapping paths are relative to the spec file's folder unless absolute.
type DatasetSpec struct {
	// Dataset is the dataset's name: lower-case letters, digits, '_' and '-'.
	Dataset string `yaml:"dataset"`
	// Class is platform, public or synthetic.
	Class string `yaml:"class"`
	// Subject is the identifier kind that keys the dataset; every source's subject must be of it.
	Subject string `yaml:"subject"`
	// Description is free text shown by `insitu dataset show`.
	Description string `yaml:"description,omitempty"`
	// Mappings are the mapping files of the sources.
	Mappings []string `yaml:"mappings"`
}
