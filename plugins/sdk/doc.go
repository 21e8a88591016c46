// Package sdk is what a bank imports to write an insitu model plugin: a program the enclave starts
// in a sandbox, hands a training job, and whose weights and scores it takes back through the output
// gate. A plugin implements Model and its main is one call:
//
//	func main() { sdk.Serve(mymodel.New()) }
//
// Start with Model: Describe declares the model family, the mode the plugin runs in and the outputs
// it returns; Train receives a TrainInput and returns an Output.
//
// What a plugin receives depends on its mode:
//
//   - ModePlaintextPublic: TrainInput.Rows streams the rows of a public or synthetic dataset as
//     Arrow record batches (the enclave never hands platform data to a plugin in plaintext, and
//     refuses such a job). ReadTable gathers them into memory.
//   - ModeHE: TrainInput.Rows streams CKKS ciphertexts in binary columns, and TrainInput.HE gives
//     the parameters, the evaluation keys and a refresh service.
//   - ModeAggregate: no rows; TrainInput.Aggregate answers aggregate queries (histograms, XᵀX
//     and Xᵀy, logistic gradients and Hessians, per-bin g/h sums of a tree ensemble), thresholded
//     and noised by the enclave, each spending part of the job's privacy budget (ρ-zCDP; see
//     AggregateClient, RhoToEpsilon and EpsilonToRho).
//
// The Output carries weights (a named vector with an intercept, or a tree ensemble), scores per
// subject pseudonym, training metrics and, in HE mode, ciphertexts for the gate to decrypt. Every
// output is bounded (Limits); Output.Check tells a plugin author before the enclave does.
//
// Test a plugin with package plugintest, which runs it through the real gRPC transport in-process.
// The protocol behind Serve is go-plugin over a unix socket; enclave services (HE refresh,
// aggregate queries) come back over go-plugin's multiplexed broker. None of that shows in this
// package's API, which is Go types only; the host side lives in package host.
package sdk

// ProtocolVersion is the version of the plugin protocol spoken by this SDK. The enclave accepts
// plugins built against any version it lists; a plugin built against an unknown version is refused
// at the handshake.
const ProtocolVersion = 1
