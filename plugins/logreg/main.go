// Command logreg is insitu's reference model plugin: L2-regularised logistic regression on the
// plaintext rows of a public or synthetic dataset. The enclave starts it; run by hand it only says
// that it is a plugin. Its logic is in package model.
package main

import (
	"insitu/plugins/logreg/model"
	"insitu/plugins/sdk"
)

func main() { sdk.Serve(model.New()) }
