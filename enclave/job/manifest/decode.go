package manifest

import (
	"fmt"

	"insitu/connectors/strictyaml"

	"go.yaml.in/yaml/v3"
)

// ruleOf maps the rules of strictyaml to this package's.
var ruleOf = map[strictyaml.Rule]string{
	strictyaml.RuleSyntax:     RuleSyntax,
	strictyaml.RuleSize:       RuleSize,
	strictyaml.RuleUnknownKey: RuleUnknownField,
	strictyaml.RuleDuplicate:  RuleDuplicate,
	strictyaml.RuleType:       RuleType,
	strictyaml.RuleLimit:      RuleModel, // only hyperparameters are free-form
}

// dialect decodes manifests: JSON or YAML, scalars of the field's type only, hyperparameters
// bounded, errors as *Error.
var dialect = &strictyaml.Dialect{
	Err: func(line int, path string, rule strictyaml.Rule, message string, cause error) error {
		r, ok := ruleOf[rule]
		if !ok {
			panic(fmt.Sprintf("manifest: no rule for strictyaml rule %q", rule))
		}
		return &Error{Line: line, Path: path, Rule: r, Message: message, Err: cause}
	},
	Describe:         describe,
	Typed:            true,
	Mapping:          "an object of 'key: value' entries",
	Aliases:          "anchors and aliases are not allowed: write the value out",
	SecondDocument:   "more than one YAML document: remove the second '---'",
	ClipKey:          clip,
	GenericName:      "hyperparameter",
	MaxGenericDepth:  MaxHyperparameterDepth,
	MaxGenericValues: MaxHyperparameterValues,
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "nothing (null)"
	case "!!int", "!!float":
		return "the number " + clip(n.Value)
	case "!!bool":
		return "the value " + n.Value
	}
	return fmt.Sprintf("the text %q", clip(n.Value))
}
