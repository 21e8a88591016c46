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
//   - store: the state database (SQLite) and its versioned migrations.
//   - audit: the append-only, hash-chained audit log with signed checkpoints.
//   - consent: the registry of enterprises' authorizations and the cohort check.
//   - cohort: labels, feature columns and default transforms for a fit inside the enclave.
//   - pluginstore, sandbox: plugin binaries by digest, and the sandbox a plugin runs in.
//   - he: CKKS parameters.
//
// Call datadir.Init once to create a data directory, its master key and the enclave's identity; on
// every start, call Open (this package) with a keys.Source: it opens the data directory and
// everything kept in it, and its methods record what they change in the audit log.
package enclave
