// Package catalog is insitu's typed form of the credit-information sharing list annexed to the State
// Council plan 国办发〔2024〕15号: 17 categories, their items, each item's typed fields, the subject
// it is about, its sharing mode, whether it needs the subject's authorization and its sensitivity.
//
// Call Default for the embedded catalog, then Catalog.Item or Catalog.Field to look keys up.
package catalog

import (
	_ "embed"
	"errors"
	"fmt"
	"sync"
)

// SharingMode is how the annex lets an item be shared.
type SharingMode string

const (
	// NationalAPIAuthorized: called from the national level through an interface, only with the
	// subject's authorization (国家层面接口调用（经信息主体授权）).
	NationalAPIAuthorized SharingMode = "national_api_authorized"
	// NationalPhysical: physically aggregated at national level and shared to the national platform
	// (国家层面以物理归集方式共享至全国融资信用服务平台).
	NationalPhysical SharingMode = "national_physical"
	// LocalPhysical: physically aggregated at local level (地方层面物理归集).
	LocalPhysical SharingMode = "local_physical"
	// VerificationAuthorized: data verification only, with the subject's authorization: the platform
	// answers yes/no or a checked value and never hands the record over (数据核验（经信息主体授权）).
	VerificationAuthorized SharingMode = "verification_authorized"
)

// Subject is whom an item is about.
type Subject string

const (
	// SubjectEnterprise: an enterprise, keyed by its unified social credit code.
	SubjectEnterprise Subject = "enterprise"
	// SubjectPerson: a natural person, keyed by resident identity number.
	SubjectPerson Subject = "person"
)

// Sensitivity orders how carefully a field or item must be handled. Higher is more sensitive.
type Sensitivity int

const (
	// Public: registered facts anyone may look up (licences, designations, enterprise names).
	Public Sensitivity = 1
	// Confidential: business information that may be a trade secret (tax, utilities, social
	// insurance, customs); used inside the enclave, released only as model outputs.
	Confidential Sensitivity = 2
	// Personal: personal information (resident id numbers, natural persons' names, marital status):
	// usable inside the enclave only with explicit authorization and never an output.
	Personal Sensitivity = 3
)

// FieldType is the value type of a field.
type FieldType string

const (
	TypeString FieldType = "string" // free text
	TypeEnum   FieldType = "enum"   // one of Field.Values
	TypeInt    FieldType = "int"    // 64-bit integer
	TypeFloat  FieldType = "float"  // 64-bit float
	TypeBool   FieldType = "bool"   // true/false
	TypeDate   FieldType = "date"   // calendar date, ISO 8601 YYYY-MM-DD
	TypeID     FieldType = "id"     // an identifier of kind Field.IDKind, validated by connectors/ident
)

// Field is one typed field of an item.
type Field struct {
	Key         string      `yaml:"key" json:"key"`
	NameZH      string      `yaml:"name_zh" json:"name_zh"`
	NameEN      string      `yaml:"name_en" json:"name_en"`
	Type        FieldType   `yaml:"type" json:"type"`
	Unit        string      `yaml:"unit,omitempty" json:"unit,omitempty"`       // e.g. CNY, kWh, persons, m2
	Values      []string    `yaml:"values,omitempty" json:"values,omitempty"`   // allowed values of an enum
	IDKind      string      `yaml:"id_kind,omitempty" json:"id_kind,omitempty"` // ident kind of an id field
	Min         *float64    `yaml:"min,omitempty" json:"min,omitempty"`         // smallest valid numeric value
	Max         *float64    `yaml:"max,omitempty" json:"max,omitempty"`         // largest valid numeric value
	Sensitivity Sensitivity `yaml:"sensitivity" json:"sensitivity"`
	// FromAnnex is true when the annex lists this field; false when the project chose it.
	FromAnnex bool `yaml:"from_annex" json:"from_annex"`
}

// Item is one row of the annex: an information item with its fields.
type Item struct {
	Key         string      `yaml:"key" json:"key"` // unique across the catalog, e.g. "tax_arrears_history"
	NameZH      string      `yaml:"name_zh" json:"name_zh"`
	NameEN      string      `yaml:"name_en" json:"name_en"`
	Subject     Subject     `yaml:"subject" json:"subject"`
	Sharing     SharingMode `yaml:"sharing" json:"sharing"`
	Sensitivity Sensitivity `yaml:"sensitivity" json:"sensitivity"` // the highest of its fields
	// NeedsAuthorization is true when the subject's authorization is required to use the item.
	NeedsAuthorization bool     `yaml:"needs_authorization" json:"needs_authorization"`
	Fields             []*Field `yaml:"fields" json:"fields"`

	Category *Category `yaml:"-" json:"-"`
}

// Category is one of the annex's 17 categories.
type Category struct {
	No     int     `yaml:"no" json:"no"`
	Key    string  `yaml:"key" json:"key"`
	NameZH string  `yaml:"name_zh" json:"name_zh"`
	NameEN string  `yaml:"name_en" json:"name_en"`
	Items  []*Item `yaml:"items" json:"items"`
}

// Catalog is the whole sharing list. It is immutable once loaded.
type Catalog struct {
	Categories []*Category `yaml:"categories" json:"categories"`

	items map[string]*Item
}

// ErrUnknown is wrapped by lookups of keys the catalog does not have.
var ErrUnknown = errors.New("not in the catalog")

// Item returns the item with the given key.
func (c *Catalog) Item(key string) (*Item, error) {
	it, ok := c.items[key]
	if !ok {
		return nil, fmt.Errorf("catalog item %q: %w", key, ErrUnknown)
	}
	return it, nil
}

// Field returns the field of an item.
func (c *Catalog) Field(itemKey, fieldKey string) (*Item, *Field, error) {
	it, err := c.Item(itemKey)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range it.Fields {
		if f.Key == fieldKey {
			return it, f, nil
		}
	}
	return nil, nil, fmt.Errorf("field %q of catalog item %q: %w", fieldKey, itemKey, ErrUnknown)
}

// Items returns every item in annex order.
func (c *Catalog) Items() []*Item {
	var out []*Item
	for _, cat := range c.Categories {
		out = append(out, cat.Items...)
	}
	return out
}

//go:embed catalog.yaml
var embedded []byte

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
	defaultErr  error
)

// Default returns the embedded catalog. It panics if the embedded file is invalid, which tests rule
// out (programmer error).
func Default() *Catalog {
	defaultOnce.Do(func() { defaultCat, defaultErr = Parse(embedded) })
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultCat
}
