// Package runner runs a bank's model plugin on a job: it starts the approved binary from the plugin
// store in the sandbox through go-plugin, streams the job's rows to it, collects its output, and
// says in one Reason how the run ended, whatever the plugin did. The enclave keeps serving: a run
// returns, and leaves no process, goroutine, descriptor, folder or cgroup behind.
//
// Call Sweep at start-up (Run also does it once per process), then Run:
//
//	res, err := runner.Run(ctx, runner.RunSpec{
//		Plugins: store, Digest: approved,
//		Mode:    sdk.ModePlaintextPublic,
//		Input:   &runner.PlainInput{Datasets: datasets, Dataset: "give_me_some_credit", LabelColumn: "custom.default"},
//		Sandbox: sandbox.Spec{Limits: sandbox.Limits{WallClock: time.Hour}},
//	})
//	// res.Reason: completed, exited, signal, out_of_memory, cpu_limit, timeout, protocol_error,
//	// forbidden_address, output_too_large, invalid_output, plugin_error, incompatible,
//	// digest_mismatch, handshake_failed, cancelled, sandbox_refused or input_error.
//
// The program's main (and TestMain of a package whose tests call Run) must call
// sandbox.MaybeRunTrampoline first.
//
// # What a run does
//
//   - Refuses, before anything starts, a plaintext job on a dataset of class platform
//     (ErrPlatformData): only public and synthetic datasets reach a plugin in plaintext.
//   - Assembles the cohort and fits the feature transforms inside the enclave; the plugin sees
//     keyed subject pseudonyms, transformed float64 features and, if it declares it needs them,
//     the labels.
//   - In sdk.ModeHE, takes the cohort the enclave prepared (RunSpec.HE), refuses a value outside
//     its feature's public bounds, draws a fresh key set for the run, encrypts the cohort as it
//     streams it (layout sdk.HELayoutColumnsV1, enclave/he) and offers the refresh service over the
//     broker; the plugin never gets the secret key or a plaintext value, whatever the dataset's
//     class. Result.HE hands the key set to the output gate.
//   - In sdk.ModeAggregate, streams no rows and offers the job's aggregate query service
//     (RunSpec.Aggregate, built by enclave/aggregate on the prepared cohort) over the broker.
//   - Copies the approved digest's bytes into a sealed memfd and checks the SHA-256 there
//     (digest_mismatch if the stored file changed), and executes that memfd in the sandbox
//     (sandbox_refused, naming the layer, when strict mode lacks one).
//   - Starts it through go-plugin with gRPC only, the multiplexed broker, no host environment,
//     /dev/null as standard input, and the socket dir in a runner-owned per-run folder. The
//     address the handshake names is checked before anything is dialled: only a unix socket
//     directly inside that socket dir (forbidden_address otherwise).
//   - Calls Describe, then Train with the rows as an Arrow stream in bounded chunks; the output is
//     checked against the description and the job's limits as it arrives.
//   - Keeps at most RunSpec.CaptureBytes of each of the plugin's stdout and stderr (the start and
//     the end) and RunSpec.LogLines log lines, and counts the rest: flooding costs the enclave
//     no memory.
//   - Kills the plugin at the end, on cancellation, and at the sandbox's limits, and names how it
//     ended: a verdict reached from what the plugin sent comes first; a broken connection is
//     explained by how the process ended (a limit, a signal, an exit status).
package runner
