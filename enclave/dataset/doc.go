// Package dataset keeps the enclave's datasets: subject-keyed tables (one row per enterprise or
// person) assembled from one or more provider sources, each version encrypted at rest, authenticated
// and written atomically.
//
// Call Open with an open data directory (datadir.Open) to get the Store, then Store.Ingest with a
// spec and mappings from connectors.LoadDatasetSpec to write a new version; Store.List,
// Store.Show and Store.Verify to inspect versions; Store.Scan to read a version back as one table.
// Version 0 in Show, Verify, Scan and Manifest means the latest.
//
// # Datasets, versions, parts
//
// A dataset has a name (lower-case letters, digits, '_' and '-'), a class (platform, public or
// synthetic, see DESIGN.md) and the identifier kind of its subjects. Each Ingest writes the next
// version, v1, v2, …; a version never changes once written. A version holds one part per source: the
// source's validated rows, in the Arrow layout of package connectors (subject_id first, then one
// column per mapped field, with the field's catalog item, provider and source in the field
// metadata). Scan joins the parts on subject_id into one row per subject (an outer join), with the
// union of their columns.
//
// # On disk
//
// Under the data directory:
//
//	datasets/<name>/.lock               flock held by the ingest in progress
//	datasets/<name>/.stage-*            a version being written (removed by the next ingest if its
//	                                    writer died)
//	datasets/<name>/v<N>/manifest.json  the Manifest, plaintext JSON
//	datasets/<name>/v<N>/manifest.hmac  hex HMAC-SHA-256 of manifest.json
//	datasets/<name>/v<N>/part-<source>.arrows.enc  a part: LZ4-compressed Arrow IPC stream, encrypted
//	datasets/<name>/v<N>/quality.json.enc          the QualityReport as JSON, encrypted
//
// A version is written into a stage folder next to the versions; every file is fsynced as it is
// closed, then the folder, then the stage is renamed to v<N> and the dataset folder fsynced. A failed,
// cancelled or killed ingest therefore leaves no version, and readers never see a partial one.
// Ingests of one dataset are serialised by the lock; the version number is chosen under it.
//
// The manifest holds the shape and provenance of the version and no data value: the columns with
// their catalog items, units and providers; per part its file's block count, plaintext and
// ciphertext sizes and SHA-256 (the plaintext hash is the content hash of the Arrow IPC bytes), its
// rows and distinct subjects; the sources (provider, format, file name, file SHA-256, mapping
// SHA-256); and per source the counts of the quality report (rows read, accepted, rejected, invalid
// identifiers, duplicates) and each field's completeness. Data-dependent figures (distinct counts,
// min and max, the rows left out) are only in the encrypted quality report. The HMAC, under a key
// derived from the master key (keys.PurposeDatasetManifest), covers the dataset name, the version
// number and the manifest's bytes, so a manifest cannot be altered or moved to another version.
//
// # Encrypted files
//
// Parts and the quality report are in the format of package encfile: AES-256-GCM over 256 KiB
// plaintext blocks in the STREAM construction, under a random data key per file wrapped with
// AES-256-GCM by a key derived from the master key (keys.PurposeDatasetKEK). The header binds the
// file's identity, "insitu dataset <name> v<N> <file>", so a part swapped with another part or copied
// from another version fails to open (encfile.ErrWrongFile); a changed, reordered, dropped or
// truncated block fails authentication (encfile.ErrCorrupt, encfile.ErrTruncated); a wrong master key
// fails to unwrap the data key (encfile.ErrKey) and, before that, the manifest's HMAC (ErrTampered).
// Verify decrypts every block and recomputes every hash and count; Scan checks each part's hashes
// before it returns any row read from it.
//
// # Memory
//
// Ingest streams each source in record batches whose size shrinks as rows widen; what it holds
// grows with the number of distinct subjects (the connectors' duplicate check and, for datasets of
// several sources, the subject index that counts their union), not with the size of the files or the
// width of a row. Scan holds an index of every subject and a window of rows bounded by
// ScanOptions.MemoryBudget.
//
// Storage is behind the Storage and Stage interfaces; DirStorage implements them in a folder.
package dataset
