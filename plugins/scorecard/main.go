// Command scorecard is insitu's reference credit-scorecard plugin in aggregate mode: binning from
// the enclave's noisy histograms, weight-of-evidence features chosen by information value, and
// logistic regression on them by damped Newton steps from noisy gradient and Hessian sums. The
// enclave starts it; run by hand it only says that it is a plugin. Its logic is in package model.
package main

import "insitu/plugins/scorecard/model"

func main() { model.Serve() }
