package api

import (
	"errors"
	"io"
	"net/http"

	"insitu/enclave/psi"
)

// LimitPSI is the body limit of a PSI message.
const LimitPSI = psi.MaxMessageSize

// PSIContentType is the media type of PSI messages, both ways.
const PSIContentType = "application/vnd.insitu.psi"

// psiHandle answers one PSI message of a bank (package psi): the body is the message, the answer
// the enclave's reply. The calling bank is the grantee whose authorizations select the enclave's
// set, and the only party that can continue the session it opens.
func (s *Server) psiHandle(w http.ResponseWriter, r *http.Request, c *Caller) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	reply, err := s.psi.Handle(r.Context(), c.Name, body)
	if err != nil {
		return psiError(err)
	}
	w.Header().Set("Content-Type", PSIContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(reply)
	return nil
}

// psiError maps the protocol's refusals to API codes; other errors (an unknown dataset) go through
// classify.
func psiError(err error) error {
	var pe *psi.Error
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case errors.Is(err, psi.ErrMalformed):
		return errorf(http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, psi.ErrRequest):
		return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	case errors.Is(err, psi.ErrSession):
		return errorf(http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, psi.ErrReplay), errors.Is(err, psi.ErrLimit):
		return errorf(http.StatusConflict, CodeConflict, err.Error())
	}
	return err
}
