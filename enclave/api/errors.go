package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"insitu/enclave"
	"insitu/enclave/aggregate"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/pluginstore"
)

// Error codes of the JSON error body {"error":{"code":…,"message":…}}. Clients map them to
// sentinel errors (package client).
const (
	CodeBadRequest      = "bad_request"     // the request is malformed (body, query, path)
	CodeInvalid         = "invalid"         // the content breaks a rule: manifest, labels, grant, plugin
	CodeUnauthenticated = "unauthenticated" // no valid request signature from a registered party
	CodeForbidden       = "forbidden"       // the party's role may not use this route
	CodeNotFound        = "not_found"       // no such object, or not one the party may see
	CodeConflict        = "conflict"        // the object's state does not allow it (job transition, duplicate)
	CodeTooLarge        = "too_large"       // the body exceeds the route's limit
	CodeUnavailable     = "unavailable"     // the enclave cannot serve this now (shutting down, busy, not built in)
	CodeInternal        = "internal"        // a failure inside the enclave; the log has details
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a code (the Code constants), a message for people, and for row-numbered input
// errors the rows concerned.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

// apiError is an error with the status and code to answer it with.
type apiError struct {
	status  int
	code    string
	msg     string
	details any
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, msg: msg}
}

var (
	errForbidden = func(msg string) error { return errorf(http.StatusForbidden, CodeForbidden, msg) }
	errNotFound  = func(msg string) error { return errorf(http.StatusNotFound, CodeNotFound, msg) }
	errBad       = func(msg string) error { return errorf(http.StatusBadRequest, CodeBadRequest, msg) }
)

// classify maps an error of the enclave's packages to a status, a code and whether its message may
// be shown (internal failures are answered with a generic message and logged).
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	var ie *consent.ImportError
	switch {
	case errors.As(err, &mbe), errors.Is(err, pluginstore.ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: CodeTooLarge, msg: err.Error()}
	case errors.As(err, &ie):
		return &apiError{status: http.StatusBadRequest, code: CodeInvalid, msg: err.Error(), details: ie.Rows}
	case errors.Is(err, job.ErrNotFound), errors.Is(err, consent.ErrNotFound), errors.Is(err, pluginstore.ErrNotFound),
		errors.Is(err, dataset.ErrNotFound), errors.Is(err, enclave.ErrLabelsNotFound):
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, msg: err.Error()}
	case errors.Is(err, job.ErrTransition), errors.Is(err, job.ErrDuplicate), errors.Is(err, job.ErrExpired),
		errors.Is(err, consent.ErrAlreadyRevoked), errors.Is(err, job.ErrCohortTooSmall), errors.Is(err, gate.ErrNotReleased):
		return &apiError{status: http.StatusConflict, code: CodeConflict, msg: err.Error()}
	case errors.Is(err, job.ErrParty):
		return &apiError{status: http.StatusForbidden, code: CodeForbidden, msg: err.Error()}
	case errors.Is(err, manifest.ErrInvalid), errors.Is(err, job.ErrSignature), errors.Is(err, consent.ErrInvalid),
		errors.Is(err, cohort.ErrLabels), errors.Is(err, cohort.ErrSealed), errors.Is(err, pluginstore.ErrNotExecutable),
		errors.Is(err, pluginstore.ErrBadMeta), errors.Is(err, pluginstore.ErrBadDigest), errors.Is(err, errBodyDigest),
		errors.Is(err, aggregate.ErrSetting):
		return &apiError{status: http.StatusBadRequest, code: CodeInvalid, msg: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, msg: "the request was cancelled or timed out"}
	}
	return &apiError{status: http.StatusInternalServerError, code: CodeInternal, msg: "internal error; the enclave's log has the details"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, ae *apiError) {
	writeJSON(w, ae.status, ErrorBody{Error: ErrorDetail{Code: ae.code, Message: ae.msg, Details: ae.details}})
}
