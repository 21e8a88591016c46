package ident

import "strings"

// usccAlphabet is the 31-character set of GB 32100-2015 (digits and capital letters without I, O, S,
// V and Z); a character's value is its index.
const usccAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// usccWeights are 3^(i) mod 31 for positions 1..17.
var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// USCCCheck returns the check character (position 18) for the first 17 characters of a unified
// social credit code.
func USCCCheck(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, invalid(KindUSCC, first17, RuleLength, "check needs 17 characters, got %d", len(first17))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(usccAlphabet, first17[i])
		if v < 0 {
			return 0, invalid(KindUSCC, first17, RuleCharset,
				"character %d %q is not in the GB 32100 character set (digits and A-Y without I, O, S, V, Z)", i+1, first17[i])
		}
		sum += v * usccWeights[i]
	}
	c := (31 - sum%31) % 31
	return usccAlphabet[c], nil
}

func validateUSCC(s string) error {
	if s == "" {
		return invalid(KindUSCC, s, RuleEmpty, "empty")
	}
	if len(s) != 18 {
		return invalid(KindUSCC, s, RuleLength, "%d characters, a unified social credit code has 18", len(s))
	}
	want, err := USCCCheck(s[:17])
	if err != nil {
		return err
	}
	if strings.IndexByte(usccAlphabet, s[17]) < 0 {
		return invalid(KindUSCC, s, RuleCharset,
			"character 18 %q is not in the GB 32100 character set (digits and A-Y without I, O, S, V, Z)", s[17])
	}
	if s[17] != want {
		return invalid(KindUSCC, s, RuleCheck, "check character is %q, GB 32100 mod-31 gives %q", s[17], want)
	}
	return nil
}
