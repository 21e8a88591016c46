// Command gbdt is insitu's reference gradient-boosted trees plugin in aggregate mode: it grows trees
// from the enclave's noisy per-bin gradient and Hessian sums and never sees a row. The enclave starts
// it; run by hand it only says that it is a plugin. Its logic is in package model.
package main

import "insitu/plugins/gbdt/model"

func main() { model.Serve() }
