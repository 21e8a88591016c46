package sdk

import "context"

// AggregateClient answers aggregate queries about the job's training cohort in ModeAggregate. It is
// the only way a plugin in that mode learns anything about the data: no row ever reaches it.
//
// Every answer is computed in the enclave over the transformed training features (the names in
// TrainInput.Features) and the labels, clipped as each query documents, noised with a discrete
// Gaussian calibrated to the query's sensitivity, and thresholded: a cell whose noisy count is below
// the steward's threshold (Budget.MinCount) comes back Suppressed with zero values, and a sum is
// suppressed with its cell's count. Neighbouring cohorts differ by one subject added or removed.
//
// Each query names the privacy budget it spends, Rho, in zero-concentrated differential privacy
// (ρ-zCDP): the spends of a job add up, and the job may spend at most Budget.Rho in total, which
// is its manifest's ε at the enclave's δ (EpsilonToRho), and no more than what remains of the bank's
// total on the dataset across all its jobs. A query beyond either is refused, with an error saying
// what was spent and what remains; nothing is spent then. More ρ means less noise: the noise's
// standard deviation is the query's sensitivity divided by √(2ρ) (spread over the parts of the
// answer as each query says).
//
// Bins follow modeling/binning and modeling/gbdt: with edges e_0 < … < e_{k−1}, bin 0 holds
// x ≤ e_0, bin j holds e_{j−1} < x ≤ e_j, bin k holds x > e_{k−1}, and bin k+1 holds missing
// (NaN) values; a column cut at k edges has k+2 bins.
//
// Errors returned by the enclave (a refused query, an exhausted budget) are plain errors with the
// enclave's message; ErrNotOffered when the job is not in ModeAggregate.
type AggregateClient interface {
	// Query answers one statistic (a count, a sum or a mean) grouped by the cells of one or more
	// binned columns.
	Query(ctx context.Context, q AggregateQuery) (AggregateAnswer, error)
	// Histogram answers, per feature, the rows per bin (and label) and optionally the feature's sum
	// over them: what binning and scorecards start from.
	Histogram(ctx context.Context, q HistogramQuery) (*HistogramAnswer, error)
	// Moments answers the sufficient statistics of a linear model, XᵀX and Xᵀy, with an
	// intercept column.
	Moments(ctx context.Context, q MomentsQuery) (*MomentsAnswer, error)
	// GLM answers the gradient and Hessian of the logistic log-loss at the given weights: one
	// Newton step's worth of information.
	GLM(ctx context.Context, q GLMQuery) (*GLMAnswer, error)
	// TreeHistograms answers, for a tree ensemble and a set of nodes, the per-bin sums of the
	// log-loss gradients g and Hessians h of the rows in each node: what a gradient-boosted tree
	// grows from (modeling/gbdt's Provider).
	TreeHistograms(ctx context.Context, q TreeQuery) (*TreeAnswer, error)
	// Budget reports the job's privacy budget and what it spent so far. It spends nothing.
	Budget(ctx context.Context) (Budget, error)
}

// Budget is a job's privacy budget as the enclave keeps it.
type Budget struct {
	// Epsilon and Delta are the job's (ε, δ): ε from its manifest, δ the enclave's.
	Epsilon, Delta float64
	// Rho is the job's budget in zCDP: EpsilonToRho(Epsilon, Delta).
	Rho float64
	// RhoSpent is what the job's answers spent so far, and EpsilonSpent its (ε, δ) equivalent
	// (RhoToEpsilon(RhoSpent, Delta)).
	RhoSpent, EpsilonSpent float64
	// RhoLeft is what the job may still spend: the smaller of its own remaining budget and what
	// remains of its bank's total on the dataset.
	RhoLeft float64
	// MinCount is the threshold k: cells whose noisy count is below it are suppressed.
	MinCount int
}

// Spent describes what one answer spent.
type Spent struct {
	// Rho is the zCDP budget the answer spent (the query's Rho).
	Rho float64
	// Epsilon is the (ε, δ) equivalent of the job's spend so far, this answer included.
	Epsilon float64
}

// Statistic is the statistic an aggregate query asks for.
type Statistic string

const (
	// StatCount counts the rows of each cell.
	StatCount Statistic = "count"
	// StatSum sums Column over each cell.
	StatSum Statistic = "sum"
	// StatMean averages Column over each cell: the noisy sum divided by the noisy count.
	StatMean Statistic = "mean"
)

// Valid reports whether s is one of the defined statistics.
func (s Statistic) Valid() bool { return s == StatCount || s == StatSum || s == StatMean }

// AggregateQuery asks for one statistic over the cohort, grouped into cells.
type AggregateQuery struct {
	// Statistic is the statistic of each cell.
	Statistic Statistic
	// Column is the column summed or averaged (a feature, or the label TrainInput.Label); "" for
	// StatCount. Values are clipped to the column's bounds after its transform; a sum over a
	// feature without finite bounds is refused.
	Column string
	// GroupBy bins the rows; no bins means one cell over the whole cohort. Cells are the product of
	// the bins (each Bins has len(Edges)+2, the last for missing values).
	GroupBy []Bins
	// Rho is the budget the answer spends (> 0). A sum or a mean spends half on the counts and
	// half on the sums.
	Rho float64
}

// Bins cuts a numeric column at increasing, finite edges (see AggregateClient for which values fall
// in which bin).
type Bins struct {
	Column string
	Edges  []float64
}

// AggregateAnswer is the enclave's answer to an AggregateQuery.
type AggregateAnswer struct {
	// Cells holds one cell per combination of bins, in row-major order of GroupBy (the last
	// GroupBy entry varies fastest).
	Cells []AggregateCell
	// Epsilon is the (ε, δ) equivalent of the job's spend so far, this answer included.
	Epsilon float64
	// Rho is the zCDP budget this answer spent.
	Rho float64
}

// AggregateCell is one cell of an answer.
type AggregateCell struct {
	// Bins holds the bin index of each GroupBy entry.
	Bins []int
	// Value is the noised statistic; 0 when Suppressed.
	Value float64
	// Suppressed: the cell's noisy count is below the threshold and its value is withheld.
	Suppressed bool
}

// HistogramQuery asks, for each binned feature, the number of training rows per bin, per label
// value when ByLabel is set, and with Sums the sum of the feature over each of those cells.
//
// Sensitivity: one row falls in one cell per feature, so the counts have L2 sensitivity √F for F
// features, and the sums √(Σ_f B_f²) where B_f bounds |x_f| after its transform (clipped there; a
// feature without finite bounds cannot be summed). With Sums, half of Rho goes to the counts and
// half to the sums.
type HistogramQuery struct {
	// Features are the features to histogram, each with its edges; Column names a feature.
	Features []Bins
	// ByLabel splits every bin by the label (0 and 1).
	ByLabel bool
	// Sums asks for the feature's sum over each cell as well.
	Sums bool
	// Rho is the budget the answer spends (> 0).
	Rho float64
}

// HistogramAnswer is the answer to a HistogramQuery: one FeatureHistogram per queried feature, in
// order.
type HistogramAnswer struct {
	Features []FeatureHistogram
	Spent
}

// FeatureHistogram is one feature's histogram. Counts, Sums and Suppressed are indexed
// [label][bin]: two label rows (0 and 1) when the query was ByLabel, one otherwise; len(Edges)+2
// bins, the last for missing values. A suppressed cell has count and sum 0.
type FeatureHistogram struct {
	Column     string
	Edges      []float64
	Counts     [][]float64
	Sums       [][]float64 // nil unless the query asked for sums
	Suppressed [][]bool
}

// MomentsQuery asks for XᵀX and Xᵀy over the training rows, where each row x = (1, x_1, …, x_d)
// has an intercept entry first and y is the label.
//
// Clipping and sensitivity: every row x is scaled down to Euclidean norm at most C, where C is
// ClipNorm, or when ClipNorm is 0 the largest norm the features' bounds allow (√(1 + Σ_f B_f²);
// then every feature must have finite bounds). One row changes the upper triangle of XᵀX by at most
// C² and Xᵀy by at most C (L2). Half of Rho goes to each.
type MomentsQuery struct {
	// Features are the features of x in order; empty means all of TrainInput.Features.
	Features []string
	// ClipNorm is C above; 0 means the bound from the transforms.
	ClipNorm float64
	// Rho is the budget the answer spends (> 0).
	Rho float64
}

// MomentsAnswer is the answer to a MomentsQuery. Index 0 of every vector and matrix is the
// intercept, then the features in order; XtX[0][0] is the noisy row count.
type MomentsAnswer struct {
	Features []string
	XtX      [][]float64
	Xty      []float64
	// Suppressed: the noisy row count is below the threshold; XtX and Xty are then nil.
	Suppressed bool
	Spent
}

// GLMQuery asks for the gradient and, with Hessian, the Hessian of the logistic log-loss
// Σ_i [log(1 + e^{z_i}) − y_i·z_i], z_i = Intercept + Σ_f Weights[f]·x_if, at the given weights:
// gradient Σ (p_i − y_i)·x_i and Hessian Σ p_i(1 − p_i)·x_i x_iᵀ with p_i = σ(z_i) and x_i the row
// with its intercept entry 1 first. Add a penalty on the plugin's side.
//
// Clipping and sensitivity: each row's x_i is scaled down to norm at most C (ClipNorm, or the bound
// from the transforms as in MomentsQuery) before it enters the sums (z_i uses the unclipped row),
// so one row changes the gradient by at most C and the Hessian's upper triangle by at most C²/4.
// With Hessian, half of Rho goes to each.
type GLMQuery struct {
	// Features are the features in order, as for MomentsQuery; Weights holds one weight per feature.
	Features  []string
	Weights   []float64
	Intercept float64
	// Hessian asks for the Hessian as well as the gradient.
	Hessian bool
	// ClipNorm is C above; 0 means the bound from the transforms.
	ClipNorm float64
	// Rho is the budget the answer spends (> 0).
	Rho float64
}

// GLMAnswer is the answer to a GLMQuery; index 0 is the intercept, then the features in order.
// Whole-cohort answers are never suppressed: the cohort is at least the steward's minimum size.
type GLMAnswer struct {
	Features []string
	Gradient []float64
	Hessian  [][]float64 // nil unless asked for
	Spent
}

// TreeQuery asks for the per-bin sums of the log-loss gradient g = p − y and Hessian h = p(1 − p)
// of the rows in each of Nodes, where p = σ(margin) and the margin is that of Model on the row.
//
// Sensitivity: |g| ≤ 1 and 0 ≤ h ≤ 1/4 for every row, and a row falls in one bin per feature in
// each node that holds it. When no two nodes' paths can hold the same row (the nodes of one tree
// level), one row changes the G cells and the node total by at most √(F+1) (L2) for F features, the
// H cells by a quarter of that, and the counts by √(F+1); when paths overlap, the enclave multiplies
// by an upper bound on the nodes a row can fall in (one more than the most other nodes any node's
// path is compatible with): ask for one level at a time. Rho is split 1:2:2 between the counts, G and H.
type TreeQuery struct {
	// Model is the ensemble so far as modeling/gbdt marshals a *gbdt.Model to JSON; its feature
	// names must be Features. Empty means the margin 0 for every row.
	Model []byte
	// Features names the features Edges and the node paths refer to, and Edges holds each one's cut
	// points (at most 255, gbdt.MaxEdges).
	Features []string
	Edges    [][]float64
	// Nodes are the nodes to answer for, each a path of conditions from the root.
	Nodes []TreeNodeQuery
	// Rho is the budget the answer spends (> 0).
	Rho float64
}

// TreeNodeQuery names one node by its path from the root, as modeling/gbdt's NodeRequest does.
type TreeNodeQuery struct {
	// ID is the plugin's name for the node, echoed in the answer.
	ID   int
	Path []TreeCondition
}

// TreeCondition is one step of a path: the split of feature Feature after regular bin Bin (x ≤
// Edges[Feature][Bin] goes left), missing values left when MissingLeft, and the side taken.
type TreeCondition struct {
	Feature, Bin int
	MissingLeft  bool
	Left         bool
}

// TreeAnswer is the answer to a TreeQuery: one TreeNodeHistogram per queried node, in order.
type TreeAnswer struct {
	Nodes []TreeNodeHistogram
	Spent
}

// TreeNodeHistogram holds one node's noisy sums. G, H, Counts and Suppressed are indexed
// [feature][bin] with len(Edges[f])+2 bins per feature, the missing bin last (modeling/gbdt's
// Histogram layout). SumG, SumH and Count are the node's totals; when Count is below the threshold
// the whole node is Suppressed and every value is 0.
type TreeNodeHistogram struct {
	ID             int
	G, H, Counts   [][]float64
	Suppressed     [][]bool
	SumG, SumH     float64
	Count          float64
	NodeSuppressed bool
}
