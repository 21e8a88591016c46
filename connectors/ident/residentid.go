package ident

import "time"

// residentWeights are 2^(17-i) mod 11 for positions 1..17 (ISO 7064 MOD 11-2).
var residentWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// residentCheckChars maps the weighted sum mod 11 to the check character.
const residentCheckChars = "10X98765432"

// ResidentIDCheck returns the ISO 7064 MOD 11-2 check character (position 18) for the first 17
// digits of a resident identity number.
func ResidentIDCheck(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, invalid(KindResidentID, first17, RuleLength, "check needs 17 digits, got %d", len(first17))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0, invalid(KindResidentID, first17, RuleCharset, "character %d is not a digit", i+1)
		}
		sum += int(c-'0') * residentWeights[i]
	}
	return residentCheckChars[sum%11], nil
}

func validateResidentID(s string, now time.Time) error {
	if s == "" {
		return invalid(KindResidentID, s, RuleEmpty, "empty")
	}
	if len(s) == 15 {
		return invalid(KindResidentID, s, RuleFirstGen,
			"15-digit first-generation number: convert it to the 18-digit form of GB 11643-1999")
	}
	if len(s) != 18 {
		return invalid(KindResidentID, s, RuleLength, "%d characters, a resident identity number has 18", len(s))
	}
	want, err := ResidentIDCheck(s[:17])
	if err != nil {
		return err
	}
	if c := s[17]; (c < '0' || c > '9') && c != 'X' {
		return invalid(KindResidentID, s, RuleCharset, "character 18 must be a digit or X")
	}
	if s[0] < '1' || s[0] > '9' {
		return invalid(KindResidentID, s, RuleRegion, "address code must not start with 0")
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil {
		return invalid(KindResidentID, s, RuleDate, "characters 7-14 are not a calendar date YYYYMMDD")
	}
	if birth.Year() < 1850 || birth.After(now) {
		return invalid(KindResidentID, s, RuleDate, "birth date is before 1850 or in the future")
	}
	if s[17] != want {
		return invalid(KindResidentID, s, RuleCheck, "check character is %q, ISO 7064 MOD 11-2 gives %q", s[17], want)
	}
	return nil
}

// ResidentIDBirthDate returns the birth date encoded in a valid resident identity number.
func ResidentIDBirthDate(s string) (time.Time, error) {
	s, err := Normalize(KindResidentID, s)
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse("20060102", s[6:14])
}
