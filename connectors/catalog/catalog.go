// Package catalog is insitu's typed form of the credit-information sharing list (信用信息归集共享清单)
// annexed to the State Council plan 国办发〔2024〕15号: 17 categories, their 37 items, each item's typed
// fields, the subject it is about, its sharing mode, whether it needs the subject's authorization and
// its sensitivity.
//
// Call Default for the embedded catalog, then Catalog.Item or Catalog.Field to look keys up; Parse
// reads and checks another catalog file; WriteTable and WriteJSON print one (`insitu catalog`).
//
// # Subjects
//
// Every item is about one subject: an enterprise, keyed by its unified social credit code, or a
// natural person, keyed by resident identity number. Categories 9 (real estate of enterprise owners and
// farmers), 11 (new agricultural operators: family-farm owners) and 17 (marital status of the legal
// representative) concern natural persons; all others concern enterprises.
//
// # Sharing modes
//
// The annex gives each item one of four sharing modes, per item (categories 7, 11, 14 and 15 mix them):
//
//   - national_api_authorized (国家层面接口调用（经信息主体授权）): called from the national level through an
//     interface, only with the information subject's authorization.
//   - national_physical (国家层面以物理归集方式共享至全国融资信用服务平台): physically aggregated at national
//     level and shared to the national financing credit service platform.
//   - local_physical (地方层面物理归集): physically aggregated at local level.
//   - verification_authorized (数据核验（经信息主体授权）): data verification only, with the subject's
//     authorization: the platform answers yes/no or a checked value and never hands the record over.
//
// # Authorization
//
// An item needs the subject's authorization (Item.NeedsAuthorization) when its sharing mode says so
// (national_api_authorized, verification_authorized) and whenever it holds personal information: a
// field of sensitivity Personal, or any item about a natural person. Parse enforces both rules, so
// items shared by physical aggregation need no authorization only when they hold no personal
// information (category 11's insurance and subsidy items, shared locally, still need it).
//
// # Sensitivity
//
// Every field has a sensitivity and an item's is the highest of its fields' (Parse checks it):
//
//   - 1 Public: registered public facts anyone may look up: enterprise names, credit codes, licences,
//     designations, published lists, public resource trading.
//   - 2 Confidential: business information that may be a trade secret (tax, utilities, social
//     insurance, customs, property): used inside the enclave, released only as approved model outputs.
//   - 3 Personal: information identifying a natural person (resident identity numbers, natural
//     persons' names, names that contain them) and marital status: usable inside the enclave only with
//     explicit authorization and never an output. Resident-identity fields must be Personal.
//
// # Fields
//
// A field's type is string, enum (with its allowed values), int, float, bool, date or id (with the
// identifier kind that connectors/ident validates); numbers carry a unit (CNY, m2, mu, persons, kWh,
// t CO2e, months, ...) and a range where one is natural. FromAnnex tells fields the annex lists from
// those the project chose for items whose fields the annex leaves open. A field's role says how models
// may use it: identifier (names and ids, never a model input), descriptive (free text shown to people)
// or feature (a model input: int, float, bool, date or enum). Every item has at least one feature.
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

// SharingModes lists the sharing modes in the order the package documentation gives them.
var SharingModes = []SharingMode{NationalAPIAuthorized, NationalPhysical, LocalPhysical, VerificationAuthorized}

// Valid reports whether m is one of SharingModes.
func (m SharingMode) Valid() bool {
	switch m {
	case NationalAPIAuthorized, NationalPhysical, LocalPhysical, VerificationAuthorized:
		return true
	}
	return false
}

// Authorized reports whether the mode itself requires the subject's authorization.
func (m SharingMode) Authorized() bool {
	return m == NationalAPIAuthorized || m == VerificationAuthorized
}

// NameZH returns the annex's Chinese wording of the mode.
func (m SharingMode) NameZH() string {
	switch m {
	case NationalAPIAuthorized:
		return "国家层面接口调用（经信息主体授权）"
	case NationalPhysical:
		return "国家层面以物理归集方式共享至全国融资信用服务平台"
	case LocalPhysical:
		return "地方层面物理归集"
	case VerificationAuthorized:
		return "数据核验（经信息主体授权）"
	}
	return string(m)
}

// NameEN returns a short English description of the mode.
func (m SharingMode) NameEN() string {
	switch m {
	case NationalAPIAuthorized:
		return "national interface call, with the subject's authorization"
	case NationalPhysical:
		return "physical aggregation at national level, shared to the national platform"
	case LocalPhysical:
		return "physical aggregation at local level"
	case VerificationAuthorized:
		return "data verification only, with the subject's authorization"
	}
	return string(m)
}

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

// String returns "public", "confidential" or "personal".
func (s Sensitivity) String() string {
	switch s {
	case Public:
		return "public"
	case Confidential:
		return "confidential"
	case Personal:
		return "personal"
	}
	return fmt.Sprintf("sensitivity(%d)", int(s))
}

// NameZH returns the level's Chinese name.
func (s Sensitivity) NameZH() string {
	switch s {
	case Public:
		return "公开"
	case Confidential:
		return "保密"
	case Personal:
		return "个人信息"
	}
	return s.String()
}

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

// Numeric reports whether values of the type are numbers (int or float).
func (t FieldType) Numeric() bool { return t == TypeInt || t == TypeFloat }

// FieldRole says how a field may be used.
type FieldRole string

const (
	// RoleIdentifier: a name or identifier of the subject or of another party; never a model input.
	RoleIdentifier FieldRole = "identifier"
	// RoleDescriptive: free text or a reference shown to people (addresses, links, licence scopes).
	RoleDescriptive FieldRole = "descriptive"
	// RoleFeature: a value a model may use as an input (int, float, bool, date or enum).
	RoleFeature FieldRole = "feature"
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
	// Role is how the field may be used. When the YAML leaves it out, Parse sets it from the type:
	// id → identifier, string → descriptive, every other type → feature.
	Role FieldRole `yaml:"role,omitempty" json:"role"`
	// Description says, in English, what the field holds when its name alone does not (its period,
	// how it is counted, what an enum value means).
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Feature reports whether a model may use the field as an input.
func (f *Field) Feature() bool { return f.Role == RoleFeature }

// Item is one row of the annex: an information item with its fields.
type Item struct {
	Key         string      `yaml:"key" json:"key"` // unique across the catalog, e.g. "tax_arrears_history"
	NameZH      string      `yaml:"name_zh" json:"name_zh"`
	NameEN      string      `yaml:"name_en" json:"name_en"`
	Subject     Subject     `yaml:"subject" json:"subject"`
	Sharing     SharingMode `yaml:"sharing" json:"sharing"`
	Sensitivity Sensitivity `yaml:"sensitivity" json:"sensitivity"` // the highest of its fields
	// NeedsAuthorization is true when the subject's authorization is required to use the item.
	NeedsAuthorization bool `yaml:"needs_authorization" json:"needs_authorization"`
	// Description says, in English, what one record of the item describes when the annex leaves it
	// open (for example which of several shareholders or licences the annex's fields describe).
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Fields      []*Field `yaml:"fields" json:"fields"`

	Category *Category `yaml:"-" json:"-"`
}

// Features returns the fields a model may use as inputs, in catalog order.
func (it *Item) Features() []*Field {
	var out []*Field
	for _, f := range it.Fields {
		if f.Feature() {
			out = append(out, f)
		}
	}
	return out
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

// Category returns the category with the given number (1 to 17 in the annex).
func (c *Catalog) Category(no int) (*Category, error) {
	if no < 1 || no > len(c.Categories) {
		return nil, fmt.Errorf("catalog category %d: %w", no, ErrUnknown)
	}
	return c.Categories[no-1], nil
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

// Embedded returns a copy of the embedded catalog.yaml.
func Embedded() []byte { return append([]byte(nil), embedded...) }

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
