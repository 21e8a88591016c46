package manifest

import (
	"fmt"
	"regexp"
	"strings"

	"insitu/connectors/catalog"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// customKeyRE is the key after CustomPrefix, as connectors/catalog spells field keys.
var customKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// validateCustom checks a custom field without data. The catalog does not know the column, so the
// field must spell out its steps; the column's kind is read from them (a date starts with age;
// steps that clip, scale or impute a number make it numeric; otherwise it is categorical and must
// end with onehot), and the steps are checked as a catalog field's are, bounds in he mode
// included. The enclave checks them again against the dataset's column (CheckCustom).
func (m *Manifest) validateCustom(f *Field, p string) error {
	key := strings.TrimPrefix(f.Key, CustomPrefix)
	if !customKeyRE.MatchString(key) {
		return errAt(p+".key", RuleCatalog, "%q is not a custom field key: write custom.<key>, the key in lower-case snake_case as the mapping declares it", clip(f.Key))
	}
	if err := checkName(f, p); err != nil {
		return err
	}
	if len(f.Steps) == 0 {
		return errAt(p+".steps", RuleSteps, "missing: %s is a custom column, which has no catalog type and so no default transform: "+
			"write its steps (a number: impute, clip, scale; a category: impute, onehot; a date: age first)", f.Key)
	}
	if len(f.Steps) > MaxSteps {
		return errAt(p+".steps", RuleSize, "%d steps, more than %d", len(f.Steps), MaxSteps)
	}
	return checkSteps(f, &catalog.Field{Key: f.Key, Type: stepsType(f.Steps), Role: catalog.RoleFeature}, p, m.Mode == sdk.ModeHE)
}

// stepsType is the catalog type a custom field's steps imply: date when they start with age, float
// when a step clips, scales or imputes a number, enum otherwise.
func stepsType(steps []features.Step) catalog.FieldType {
	if len(steps) > 0 && steps[0].Age != nil {
		return catalog.TypeDate
	}
	for _, s := range steps {
		switch {
		case s.Clip != nil, s.Scale != nil:
			return catalog.TypeFloat
		case s.Impute != nil && (s.Impute.Value != nil || s.Impute.Strategy == features.ImputeMean || s.Impute.Strategy == features.ImputeMedian):
			return catalog.TypeFloat
		}
	}
	return catalog.TypeEnum
}

// CustomColumn is what a dataset records of the column behind a custom field (enclave/dataset's
// Column): its catalog type (int, float, bool, date, enum, string or id), its role and its
// sensitivity (1 public, 2 confidential, 3 personal), as the provider's mapping declared them.
type CustomColumn struct {
	Type        string
	Role        string
	Sensitivity int
}

// CheckCustom checks fields[i], a custom field, against the dataset column it names, as Parse
// checks a catalog field against the catalog: the column must be a model feature (a number, a
// boolean, a date or an enum, not an identifier or free text), the steps must apply to its type
// (and bound it in he mode), and a column the mapping declared personal information needs
// personal: true. The enclave calls it when it prepares the job's cohort; errors are *Error naming
// fields[i].
func (m *Manifest) CheckCustom(i int, c CustomColumn) error {
	if i < 0 || i >= len(m.Fields) || !m.Fields[i].Custom() {
		panic(fmt.Sprintf("manifest: CheckCustom of fields[%d], which is not a custom field", i))
	}
	p := fmt.Sprintf("fields[%d]", i)
	f := m.Fields[i]
	f.Steps = cloneSteps(f.Steps)
	cf := &catalog.Field{Key: f.Key, Type: catalog.FieldType(c.Type), Role: catalog.FieldRole(c.Role)}
	if cf.Role == "" {
		cf.Role = catalog.RoleFeature
	}
	switch cf.Type {
	case catalog.TypeInt, catalog.TypeFloat, catalog.TypeBool, catalog.TypeDate, catalog.TypeEnum:
	default:
		return errAt(p+".key", RuleColumn, "%s is a column of type %s in the dataset: a model may use numbers, booleans, dates and enums only", f.Key, clip(c.Type))
	}
	if cf.Role != catalog.RoleFeature {
		return errAt(p+".key", RuleColumn, "%s has role %s in the dataset: a model may use only feature columns", f.Key, clip(c.Role))
	}
	if c.Sensitivity >= int(catalog.Personal) && !f.Personal {
		return errAt(p+".key", RulePersonal, "%s is declared personal information by its provider's mapping: request it only with personal: true, and only as a model input", f.Key)
	}
	return checkSteps(&f, cf, p, m.Mode == sdk.ModeHE)
}

// cloneSteps copies steps so that checking them leaves the manifest's own untouched.
func cloneSteps(steps []features.Step) []features.Step {
	out := make([]features.Step, len(steps))
	for i, s := range steps {
		if s.Clip != nil {
			c := *s.Clip
			s.Clip = &c
		}
		if s.Impute != nil {
			c := *s.Impute
			s.Impute = &c
		}
		if s.Scale != nil {
			c := *s.Scale
			s.Scale = &c
		}
		if s.OneHot != nil {
			c := *s.OneHot
			s.OneHot = &c
		}
		if s.Age != nil {
			c := *s.Age
			s.Age = &c
		}
		out[i] = s
	}
	return out
}
