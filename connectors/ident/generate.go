package ident

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// NewUSCC returns a valid, random unified social credit code for synthetic data: registration
// authority 9 (market regulation), organisation type 1 (enterprise), the given 6-digit administrative
// division code, a random 9-character organisation code and the GB 32100 check character.
//
// It panics if division is not 6 digits (programmer error).
func NewUSCC(rng *rand.Rand, division string) string {
	if len(division) != 6 {
		panic(fmt.Sprintf("ident: division code %q must have 6 digits", division))
	}
	b := make([]byte, 0, 18)
	b = append(b, '9', '1')
	b = append(b, division...)
	for range 9 {
		b = append(b, usccAlphabet[rng.IntN(len(usccAlphabet))])
	}
	c, err := USCCCheck(string(b))
	if err != nil {
		panic(err)
	}
	return string(append(b, c))
}

// NewResidentID returns a valid resident identity number for synthetic data with the given 6-digit
// address code, birth date and sex (the sequence number is odd for men, even for women).
//
// It panics if region is not 6 digits starting with 1-9 (programmer error).
func NewResidentID(rng *rand.Rand, region string, birth time.Time, female bool) string {
	if len(region) != 6 || region[0] < '1' || region[0] > '9' {
		panic(fmt.Sprintf("ident: region code %q must have 6 digits and not start with 0", region))
	}
	seq := rng.IntN(500) * 2
	if !female {
		seq++
	}
	body := fmt.Sprintf("%s%s%03d", region, birth.Format("20060102"), seq)
	c, err := ResidentIDCheck(body)
	if err != nil {
		panic(err)
	}
	return body + string(c)
}
