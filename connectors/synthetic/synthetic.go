// Package synthetic generates seeded, deterministic synthetic platform data: N enterprises with
// records from some twenty data providers covering all 17 categories of the annex catalog, a bank's
// label file and the enterprises' authorization records.
//
// Call Generate with a Config and an empty or new output folder. It writes:
//
//	sources/<provider>.csv    one CSV per data provider, keyed by the enterprise's credit code (uscc)
//	mappings/<provider>.yaml  the connectors mapping file of each source
//	dataset.yaml              the connectors.DatasetSpec listing the mappings (class synthetic)
//	labels.csv                uscc,label,observation_date for the bank's borrowers
//	authorizations.csv        the enterprises' authorizations of the bank
//	manifest.json             the Summary: configuration, counts and every file's SHA-256
//
// The same Config gives byte-identical files. Every enterprise is drawn from its own random stream
// (PCG seeded from Config.Seed and the enterprise's number), so enterprise i is the same whatever
// the number of enterprises, the label fraction or the authorization rate.
//
// The data are realistic enough to benchmark credit models on: a latent weakness drives arrears,
// payment defaults, judgments, headcount changes and the 12-month default behind the labels, seen
// through noise, zero inflation, heavy tails and missing records, so that the default rate among
// the bank's borrowers is near 7 % and a plaintext logistic regression reaches an AUC near 0.78.
package synthetic

import (
	"errors"
	"fmt"
	"time"
)

// Config is what Generate generates. Zero fields take the documented defaults.
type Config struct {
	// Enterprises is the number of enterprises, 1 to MaxEnterprises.
	Enterprises int
	// Seed selects the data; the same seed and configuration give byte-identical output.
	Seed uint64
	// Bank is the key of the bank that owns the labels and is the grantee of the authorizations:
	// lower-case letters, digits, '_' and '-'. Default DefaultBank.
	Bank string
	// LabelFraction is the share of enterprises that are the bank's borrowers and get a label, in
	// (0, 1]. Default 0.5.
	LabelFraction float64
	// AuthorizationRate is the probability that a labelled enterprise has an authorization record for
	// the bank, in [0, 1]. Default 0.9; a negative value means 0.
	AuthorizationRate float64
	// AsOf is the date the data describe: windows such as "last 24 months" end on it, and the labels
	// observe defaults in the 12 months after it. Default DefaultAsOf.
	AsOf time.Time
}

// Defaults of Config.
const (
	DefaultBank              = "demo_bank"
	DefaultLabelFraction     = 0.5
	DefaultAuthorizationRate = 0.9
	// DatasetName is the dataset name dataset.yaml gives.
	DatasetName = "sme_synthetic"
	// MaxEnterprises bounds Config.Enterprises.
	MaxEnterprises = 5_000_000
)

// DefaultAsOf is the default Config.AsOf: 2026-06-30.
var DefaultAsOf = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("invalid synthetic data configuration")

// ErrOutDirNotEmpty is returned when the output folder already holds files.
var ErrOutDirNotEmpty = errors.New("output folder is not empty")

// ConfigError names the Config field that is out of range and the rule it breaks.
type ConfigError struct {
	Field string // Config field, e.g. "Enterprises"
	Value any
	Rule  string // what the value must be
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("synthetic: %s is %v, %s", e.Field, e.Value, e.Rule)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// normalize fills the defaults in and checks the ranges.
func (c Config) normalize() (Config, error) {
	if c.Enterprises < 1 || c.Enterprises > MaxEnterprises {
		return c, &ConfigError{"Enterprises", c.Enterprises, fmt.Sprintf("must be between 1 and %d", MaxEnterprises)}
	}
	if c.Bank == "" {
		c.Bank = DefaultBank
	}
	if !validKey(c.Bank) {
		return c, &ConfigError{"Bank", c.Bank, "must be 1 to 64 lower-case letters, digits, '_' and '-', starting with a letter or digit"}
	}
	if c.LabelFraction == 0 {
		c.LabelFraction = DefaultLabelFraction
	}
	if !(c.LabelFraction > 0 && c.LabelFraction <= 1) {
		return c, &ConfigError{"LabelFraction", c.LabelFraction, "must be in (0, 1]"}
	}
	switch {
	case c.AuthorizationRate == 0:
		c.AuthorizationRate = DefaultAuthorizationRate
	case c.AuthorizationRate < 0:
		c.AuthorizationRate = 0
	case !(c.AuthorizationRate <= 1):
		return c, &ConfigError{"AuthorizationRate", c.AuthorizationRate, "must be in [0, 1]"}
	}
	if c.AsOf.IsZero() {
		c.AsOf = DefaultAsOf
	}
	y, m, d := c.AsOf.Date()
	c.AsOf = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if y < 2000 || y > 2050 {
		return c, &ConfigError{"AsOf", c.AsOf.Format(time.DateOnly), "must be a date from 2000 to 2050 (later dates would give owners birth dates after today, which resident ID checks refuse)"}
	}
	return c, nil
}

func validKey(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Summary describes one generated data set; manifest.json holds it.
type Summary struct {
	Dataset           string  `json:"dataset"`
	Seed              uint64  `json:"seed"`
	Enterprises       int     `json:"enterprises"`
	Bank              string  `json:"bank"`
	AsOf              string  `json:"as_of"`
	LabelFraction     float64 `json:"label_fraction"`
	AuthorizationRate float64 `json:"authorization_rate"`

	// Labelled is the number of the bank's borrowers in labels.csv, Defaults how many of them
	// defaulted, DefaultRate their ratio.
	Labelled    int     `json:"labelled"`
	Defaults    int     `json:"defaults"`
	DefaultRate float64 `json:"default_rate"`

	// Authorizations counts the records of authorizations.csv; AuthorizedLabelled the labelled
	// enterprises with at least one record, of which CurrentlyAuthorized have one valid on AsOf;
	// Expired counts records whose validity ended before AsOf.
	Authorizations      int `json:"authorizations"`
	AuthorizedLabelled  int `json:"authorized_labelled"`
	CurrentlyAuthorized int `json:"currently_authorized"`
	Expired             int `json:"expired"`

	// Categories lists the annex categories (1-17) the sources' mapped fields cover.
	Categories []int           `json:"categories"`
	Sources    []SourceSummary `json:"sources"`
	// Files lists every file written but manifest.json, relative to the output folder with '/'.
	Files []FileDigest `json:"files"`
}

// SourceSummary describes one source file.
type SourceSummary struct {
	Source       string `json:"source"` // also the provider key
	ProviderName string `json:"provider_name"`
	Rows         int    `json:"rows"`
	Columns      int    `json:"columns"` // CSV columns, the subject column included
	// Items lists the catalog items the source's mapping covers.
	Items []string `json:"items"`
}

// FileDigest is one written file and its SHA-256.
type FileDigest struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}
