// Command helr is insitu's HE logistic-regression plugin: L2-regularised logistic regression on
// CKKS-encrypted batches, returning encrypted weights. The enclave starts it; run by hand it only
// says that it is a plugin. Its logic is in package model.
package main

import "insitu/plugins/helr/model"

func main() { model.Serve() }
