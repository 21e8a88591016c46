package dataset

import (
	"insitu/connectors"
)

// QualityReport is the full data-quality report of a dataset version, stored encrypted beside the
// manifest: the connectors' report of every source, with its data-dependent figures (distinct
// counts, min and max) and the rows left out under --max-rejects.
type QualityReport struct {
	Dataset string             `json:"dataset"`
	Version int                `json:"version"`
	Report  *connectors.Report `json:"report"`
}

// summarize keeps the counts and completeness of a source report for the plaintext manifest.
func summarize(rep *connectors.SourceReport) SourceQuality {
	q := SourceQuality{
		Source:       rep.Source,
		RowsRead:     rep.RowsRead,
		RowsAccepted: rep.RowsAccepted,
		RowsRejected: rep.RowsRejected,
		InvalidIDs:   rep.InvalidIdentifiers,
		Duplicates:   rep.DuplicateSubjects,
		Completeness: map[string]float64{},
	}
	for _, f := range rep.Fields {
		q.Completeness[f.Column] = f.Completeness
	}
	return q
}
