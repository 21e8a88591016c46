// Command logagg is insitu's reference logistic-regression plugin in aggregate mode: Newton steps
// from the enclave's noisy gradient and Hessian sums. The enclave starts it; run by hand it only
// says that it is a plugin. Its logic is in package model.
package main

import "insitu/plugins/logagg/model"

func main() { model.Serve() }
