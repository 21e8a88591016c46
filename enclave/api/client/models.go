package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"insitu/enclave/api"
	"insitu/enclave/registry"
	"insitu/enclave/scoring"
)

// ErrRateLimited is wrapped by an answer past the caller's rate limit (api.CodeRateLimited).
var ErrRateLimited = errors.New("rate limited")

func init() { sentinels[api.CodeRateLimited] = ErrRateLimited }

// Refusal returns the refusal code (package scoring's Code constants) of an error answer to a
// score, verification or monitoring request, or "" when err is not one.
func Refusal(err error) string {
	var e *Error
	if !errors.As(err, &e) || len(e.Details) == 0 {
		return ""
	}
	var d api.RefusalDetails
	if json.Unmarshal(e.Details, &d) != nil {
		return ""
	}
	return d.Refusal
}

// ListModels lists registered models: a bank its own, a steward every bank's (or bank's, when
// given). active leaves revoked models out.
func (c *Client) ListModels(ctx context.Context, bank string, active bool) ([]api.ModelInfo, error) {
	q := url.Values{}
	if bank != "" {
		q.Set("bank", bank)
	}
	if active {
		q.Set("active", "true")
	}
	uri := "/v1/models"
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	var out []api.ModelInfo
	err := c.Do(ctx, http.MethodGet, uri, nil, &out)
	return out, err
}

// Model shows a model in full (its bank).
func (c *Client) Model(ctx context.Context, id string) (*registry.Model, error) {
	var m registry.Model
	if err := c.Do(ctx, http.MethodGet, "/v1/models/"+url.PathEscape(id), nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ModelInfo shows a model summarised (what a steward gets).
func (c *Client) ModelInfo(ctx context.Context, id string) (api.ModelInfo, error) {
	var m api.ModelInfo
	err := c.Do(ctx, http.MethodGet, "/v1/models/"+url.PathEscape(id), nil, &m)
	return m, err
}

// ExportModel returns the model's export: format "json" (the registry's model document) or "pmml"
// (PMML 4.4).
func (c *Client) ExportModel(ctx context.Context, id, format string) ([]byte, error) {
	var out string
	err := c.Do(ctx, http.MethodGet, "/v1/models/"+url.PathEscape(id)+"/export?format="+url.QueryEscape(format), nil, rawText{&out})
	return []byte(out), err
}

// RevokeModel revokes a model with a reason.
func (c *Client) RevokeModel(ctx context.Context, id, reason string) (api.ModelInfo, error) {
	body, err := json.Marshal(api.Revoke{Reason: reason})
	if err != nil {
		return api.ModelInfo{}, err
	}
	var m api.ModelInfo
	err = c.Do(ctx, http.MethodPost, "/v1/models/"+url.PathEscape(id)+"/revoke", body, &m)
	return m, err
}

// Monitor asks for a stability report of a model (req.Model is taken from id).
func (c *Client) Monitor(ctx context.Context, id string, req scoring.MonitorRequest) (*scoring.MonitorReport, error) {
	req.Model = ""
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out scoring.MonitorReport
	if err := c.Do(ctx, http.MethodPost, "/v1/models/"+url.PathEscape(id)+"/monitor", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Score scores subjects with one of the bank's models.
func (c *Client) Score(ctx context.Context, req scoring.ScoreRequest) (*scoring.ScoreResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out scoring.ScoreResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/score", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify asks whether a subject's field holds a claimed value.
func (c *Client) Verify(ctx context.Context, req scoring.VerifyRequest) (*scoring.VerifyResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out scoring.VerifyResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/verify", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServingSettings returns the serving settings (steward).
func (c *Client) ServingSettings(ctx context.Context) (api.ServingSettings, error) {
	var out api.ServingSettings
	err := c.Do(ctx, http.MethodGet, "/v1/serving/settings", nil, &out)
	return out, err
}

// SetServingSetting sets a serving setting (steward), e.g. registry.SettingMinFeatures.
func (c *Client) SetServingSetting(ctx context.Context, key string, value int) (api.ServingSettings, error) {
	body, err := json.Marshal(api.ServingSetting{Value: value})
	if err != nil {
		return api.ServingSettings{}, err
	}
	var out api.ServingSettings
	err = c.Do(ctx, http.MethodPut, "/v1/serving/settings/"+url.PathEscape(key), body, &out)
	return out, err
}
