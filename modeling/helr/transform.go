package helr

import "insitu/modeling/features"

// The transform FeatureSpec declares: winsorising quantiles and the final clip in standard
// deviations.
const (
	WinsorLower = 0.01 // values below the training 1 % quantile take its value
	WinsorUpper = 0.99 // values above the training 99 % quantile take its value
	ClipSD      = 4.0  // after standardising, values are clipped to [−ClipSD, ClipSD]
)

// FeatureSpec returns the transform of one numeric column that the defaults (DefaultConfig) are
// chosen for: missing values take the training median; values are winsorised at the training
// quantiles WinsorLower and WinsorUpper; then standardised with the winsorised training mean and
// standard deviation; then clipped to [−ClipSD, ClipSD], so every output is bounded (Fitted.Bounds
// reports at most [−4, 4]) as encrypted training requires. Winsorising before standardising is what
// keeps heavy-tailed credit columns (ratios with a few huge values, day counts with sentinel codes
// such as 96 and 98) at about unit variance; see the package doc, "Features".
func FeatureSpec(column string) features.ColumnSpec {
	lq, uq := WinsorLower, WinsorUpper
	lo, hi := -ClipSD, ClipSD
	return features.ColumnSpec{Column: column, Steps: []features.Step{
		{Impute: &features.Impute{Strategy: features.ImputeMedian}},
		{Clip: &features.Clip{LowerQuantile: &lq, UpperQuantile: &uq}},
		{Scale: &features.Scale{Method: features.ScaleStandard}},
		{Clip: &features.Clip{Min: &lo, Max: &hi}},
	}}
}
