// Package manifest defines the job manifest: what a bank signs and a steward approves before any of
// the platform's data reaches a plugin.
//
// Call Parse to read a manifest from YAML or JSON, CheckSubmission when it is submitted, Sign to sign
// it with the bank's identity, and ParseSigned and (*Signed).Verify to check a signed one. Canonical
// gives the bytes that are signed and Hash their SHA-256, which approvals sign.
//
// # The schema
//
// A complete manifest, in YAML (the same keys as JSON; every key is documented on the Manifest type):
//
//	format: insitu-job-manifest-v1
//	bank: bank-a                        # the requesting bank, as its identity names it
//	purpose: credit_approval            # pre_screening, credit_approval, post_loan_monitoring, model_development
//	purpose_detail: SME working-capital loans up to 3 million CNY
//	dataset:
//	  name: sme-credit
//	  version: "2025-06"                # text: quote a version that looks like a number
//	fields:                             # catalog item.field keys (or custom.<key>), in feature order
//	  - key: tax_arrears_history.arrears_amount_24m
//	    steps:                          # modeling/features steps, applied in order
//	      - impute: {strategy: median, indicator: true}
//	      - clip: {lower_quantile: 0.01, upper_quantile: 0.99}
//	      - scale: {method: minmax, range: [-1, 1]}
//	  - key: tax_arrears_history.latest_arrears_date
//	    name: years_since_arrears       # the output feature's name; default the key
//	    steps:
//	      - age: {reference: 2025-06-30, unit: years}
//	      - impute: {strategy: constant, value: 10}
//	      - clip: {min: 0, max: 10}
//	      - scale: {method: minmax}
//	  - key: tax_arrears_history.tax_credit_grade   # no steps: DefaultSteps of its catalog type
//	  - key: legal_rep_marital_status.marital_status
//	    personal: true                  # required for a field of sensitivity personal
//	mode: he                            # plaintext_public (or plaintext-public), he, aggregate
//	model:
//	  family: logistic_regression
//	  hyperparameters: {l2: 0.01, iterations: 20, learning_rate: 0.5}
//	plugin: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	outputs:                            # only these leave the enclave
//	  weights: {max_weights: 64, max_abs: 100}
//	  scores: {range: [0, 1]}
//	  metrics: {names: [auc, ks]}
//	  # scorecard: {max_bins: 8, max_abs: 20, max_points: 1000, pdo: 20, base_score: 600, base_odds: 50}
//	  # trees: {max_trees: 50, max_depth: 3, max_leaves: 8, max_abs: 4}
//	labels: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//	# label_column: custom.default_next_month   # instead of labels, on a public dataset only
//	expires: 2030-12-31T23:59:59+08:00
//	# epsilon: 1.5                      # aggregate mode only: the privacy budget, at most 8
//
// # Rules
//
// Parse is strict. Unknown keys, keys given twice, YAML anchors and aliases, more than one YAML
// document and values of the wrong type (a number where text is wanted, text where a number is) are
// errors. Every requested field must be a feature field of the catalog (connectors/catalog Default)
// or a custom field (below); a field of sensitivity personal needs personal: true, and the mark is
// refused on any other catalog field —
// such a field is a model input only, since outputs are weights, scores and metrics and never field
// values. Steps are checked without data: each step's parameters, and that it applies to the kind of
// column it meets (a date starts with age, an enum ends with onehot, nothing follows onehot). In he
// mode every numeric feature must be clipped and scaled so that its output is bounded; the enclave
// checks the fitted bounds again before it encrypts anything. Declared weights must cover the
// features the fields are known to give. A scorecard (bins per characteristic, the largest
// coefficient, weight of evidence and intercept, the largest points and the scaling) is the output of
// the family scorecard only; trees (count, depth, leaves, largest leaf value) bound a tree ensemble.
// A job names its labels (the bank's sealed labels) or its label_column (a dataset column holding
// the outcome), never both, and one of them in he and aggregate modes; epsilon belongs to aggregate
// mode only.
//
// # Custom fields and label columns
//
// Public benchmark data is not catalog data: its mapping declares its columns itself, as
// custom.<key> (connectors), and it carries its own outcome. A field may name such a column. The
// catalog gives it no type, so Parse reads its kind from its steps (a date starts with age, steps
// that clip, scale or impute a number make it numeric, anything else is categorical and ends with
// onehot) and checks the steps as a catalog field's, bounds in he mode included; the steps must be
// written out, since there are no defaults. personal: true is allowed on a custom field. When the
// job runs, the enclave checks each custom field against the dataset's column with CheckCustom:
// its type and role must make it a model feature, the steps must apply to its type, and a column
// the mapping declared personal information needs personal: true. A steward's review shows a
// custom field as custom, with the sensitivity its mapping declared and at least confidential.
//
// label_column names the outcome column ("custom.<key>" or "item.field"): 0 or 1, rows where it
// is empty are left out. It may not also be a requested field. Parse cannot tell a dataset's class,
// so the enclave refuses at run time a label_column on any dataset that is not of class public.
//
// What authorizes the use of these columns is the enclave's rule, not the manifest's: on a public
// dataset no authorization applies (the data is published and its subjects are opaque record
// ids); on a synthetic dataset custom columns need none (their subjects are made up) while catalog
// items keep their rule; on a platform dataset a custom field is refused, since authorizations name
// catalog items and so none can cover a column the catalog does not know (enclave.PrepareCohort).
//
// Every error is an *Error wrapping ErrInvalid with the file, the line, the path of the offending
// value (fields[3].steps[0].clip.min), the rule broken (the Rule constants) and what to do.
//
// # Canonical encoding
//
// Parse applies the defaults (Validate lists them), so a default written out and one left out mean
// the same manifest. Canonical writes it as JSON with sorted keys, no whitespace and numbers in their
// shortest round-trip form, so the same manifest in YAML or in reordered JSON has the same bytes and
// the same Hash, and any change of meaning changes them.
//
// # Signatures
//
// Sign signs the canonical bytes with the bank's ML-DSA-65 key (enclave/keys) under SignatureContext;
// a signature verifies only for the bank the manifest names, only with that bank's key, only over
// that manifest and only under that context. A Signed envelope carries the canonical manifest itself,
// the signer's key fingerprint and the signature, and has its own strict parser.
package manifest
