package researcher_test

import "insitu/enclave/he"

// testInsecureLogN11 is a small CKKS set far below 128-bit security, so that the walkthrough's test
// runs in seconds; insitu bench itself uses he.DefaultLiteral.
var testInsecureLogN11 = he.Literal{LogN: 11, LogQ: []int{55, 45, 45, 45, 45, 45, 45, 45}, LogP: []int{61},
	LogDefaultScale: 45, RealOnly: true, InsecureForTesting: true}
