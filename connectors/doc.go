// Package connectors brings source data into insitu as Arrow record batches: CSV, Parquet, Arrow IPC
// (file and stream) and PostgreSQL, each mapped onto the annex catalog by a small mapping file.
//
// Call LoadMapping to read a mapping file, then Open to stream the source it describes as validated,
// typed Arrow records in bounded batches; the Reader's Report, read after the last batch, is the
// source's data-quality report.
//
// # Arrow layout of a source
//
// Every record a Reader returns has the column "subject_id" first (a string: the canonical form of the
// identifier named by the mapping's subject, see connectors/ident), then one column per mapped field,
// named "<item>.<field>" for catalog fields (e.g. "tax_arrears_history.arrears_amount_24m") or
// "custom.<key>" for a field the mapping declares itself. Catalog types map to Arrow types as: int →
// int64, float → float64, bool → boolean, date → date32, string, enum and id → utf8. Each Arrow field
// carries metadata: insitu.item, insitu.field, insitu.type, insitu.unit, insitu.provider,
// insitu.source, insitu.sensitivity (1 public, 2 confidential, 3 personal); the subject column carries
// insitu.id_kind. Missing values are Arrow nulls.
//
// Beyond that: every field also carries insitu.role, insitu.name_zh and insitu.name_en, id fields carry
// insitu.id_kind, the subject column carries insitu.provider, insitu.source and insitu.sensitivity,
// and the schema carries insitu.source, insitu.provider and insitu.format (the Meta constants name
// every key). Only accepted rows are in the records; a source holds one row per subject.
//
// # Invalid rows
//
// A row is invalid when its subject identifier is missing or invalid, when a value breaks its field's
// rules (type, range, date layout, enum values, bool spellings, identifier checks), when its subject
// already appeared in an earlier row of the source, or when a CSV row has another number of fields
// than the header. Each is a *RowError naming the file, line, data row, column, rule and what to do.
// Options.Rejects is the ingest's budget of such rows (--max-rejects): while it lasts they are left
// out and listed in the report; past it (or at the first one, with the default budget of 0) Next
// fails with the row's error. Sources that cannot be read at all fail with a *SourceError, mapping
// files with a *MappingError.
package connectors
