package cohort

import (
	"context"

	"github.com/apache/arrow/go/v17/arrow"

	"insitu/enclave/dataset"
)

// CollectAll is Collect without labels: every subject of the scanned version, with the given
// columns and label 0. Online scoring and stability reports read a whole dataset version this way.
func CollectAll(ctx context.Context, sc *dataset.Scanner, cols []dataset.Column) (*Table, error) {
	return collect(ctx, sc, cols, func(arrow.Record, int, string) (float64, bool, error) { return 0, true, nil })
}
