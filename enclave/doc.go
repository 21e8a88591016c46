// Package enclave is the trusted process of insitu: the one place where platform data exists in
// plaintext. It holds the datasets, runs bank jobs against them in sandboxed plugins, and lets out
// only what the output gate approves. Everything it keeps lives in one data directory, protected by
// a master key kept outside it.
//
// The packages below compose it:
//
//   - keys: the master key (a key file or the INSITU_MASTER_KEY variable) and the purpose keys
//     derived from it with HKDF-SHA-256.
//   - datadir: creating (Init, what insitu init runs) and opening (Open) the data directory; Open
//     checks the key against the directory's key check value and fails on a wrong key.
//   - encfile: the format of files encrypted at rest (AES-256-GCM STREAM, a wrapped per-file key).
//   - dataset: versioned, encrypted, subject-keyed datasets: Ingest, List, Show, Verify, Scan.
//
// Call datadir.Init once to create a data directory and its master key; on every start, call
// datadir.Open with a keys.Source, then dataset.Open on the result to reach the datasets.
package enclave
