package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"

	"insitu/connectors/ident"
	"insitu/enclave"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/pluginstore"
)

func (s *Server) uploadPlugin(w http.ResponseWriter, r *http.Request, c *Caller) error {
	name := filepath.Base(r.URL.Query().Get("name"))
	if name == "." || name == "/" {
		name = ""
	}
	info, existed, err := s.e.UploadPlugin(r.Context(), r.Body, pluginstore.Meta{Uploader: c.Name, Name: name})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, PluginUploaded{Digest: info.Digest.String(), Name: info.Name, Size: info.Size, Existed: existed})
	return nil
}

func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request, c *Caller) error {
	infos, err := s.e.Plugins.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]pluginstore.Info, 0, len(infos))
	for _, in := range infos {
		if !c.isRequester() || in.Uploader == c.Name {
			out = append(out, in)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) uploadLabels(w http.ResponseWriter, r *http.Request, c *Caller) error {
	sealed, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	name := filepath.Base(r.URL.Query().Get("name"))
	if name == "." || name == "/" {
		name = "labels.sealed"
	}
	sum := sha256.Sum256(sealed)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	all, err := s.e.ListLabels(r.Context(), "")
	if err != nil {
		return err
	}
	for _, l := range all {
		if l.Digest == digest && l.Bank != c.Name {
			return errorf(http.StatusConflict, CodeConflict, "labels "+digest+": another party uploaded this sealed file; seal your labels afresh")
		}
	}
	info, err := s.e.UploadLabels(r.Context(), c.Name, name, sealed)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Server) listLabels(w http.ResponseWriter, r *http.Request, c *Caller) error {
	ls, err := s.e.ListLabels(r.Context(), c.Name)
	if err != nil {
		return err
	}
	if ls == nil {
		ls = []enclave.LabelsInfo{}
	}
	writeJSON(w, http.StatusOK, ls)
	return nil
}

func (s *Server) importConsent(w http.ResponseWriter, r *http.Request, c *Caller) error {
	name := filepath.Base(r.URL.Query().Get("name"))
	if name == "." || name == "/" {
		name = "upload.csv"
	}
	res, err := s.e.Consent.Import(r.Context(), c.Name, name, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) grantConsent(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var g consent.Grant
	if err := decodeJSON(r, &g); err != nil {
		return err
	}
	a, err := s.e.Consent.Grant(r.Context(), c.Name, g)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) revokeConsent(w http.ResponseWriter, r *http.Request, c *Caller) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return errBad("id: an authorization id")
	}
	var body Revoke
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	a, err := s.e.Consent.Revoke(r.Context(), c.Name, id, body.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) listConsent(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	q := r.URL.Query()
	f := consent.Filter{Grantee: q.Get("bank"), Purpose: consent.Purpose(q.Get("purpose")), Status: consent.Status(q.Get("status"))}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errBad("after: an authorization id")
		}
		f.AfterID = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errBad("limit: 1 to 1000")
		}
		f.Limit = n
	}
	if v := q.Get("id_type"); v != "" {
		f.IDType, f.Identifier = ident.Kind(v), q.Get("id")
	}
	as, err := s.e.Consent.List(r.Context(), f)
	if err != nil {
		return err
	}
	if as == nil {
		as = []consent.Authorization{}
	}
	writeJSON(w, http.StatusOK, as)
	return nil
}

func (s *Server) consentCounts(w http.ResponseWriter, r *http.Request, c *Caller) error {
	bank := r.URL.Query().Get("bank")
	if c.Role == RoleBank {
		if bank != "" && bank != c.Name {
			return errForbidden("a bank sees only the counts of its own authorizations")
		}
		bank = c.Name
	}
	cs, err := s.e.Consent.Counts(r.Context(), bank, s.o.Now())
	if err != nil {
		return err
	}
	if c.Role == RoleBank {
		// Counts lists every grantee when the filter matches none; a bank gets its own row only.
		own := []consent.BankCounts{}
		for _, x := range cs {
			if x.Grantee == c.Name {
				own = append(own, x)
			}
		}
		cs = own
	}
	if cs == nil {
		cs = []consent.BankCounts{}
	}
	writeJSON(w, http.StatusOK, cs)
	return nil
}

func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request, c *Caller) error {
	es, err := s.e.Datasets.List(r.Context())
	if err != nil {
		return err
	}
	if c.Role == RoleSteward {
		if es == nil {
			es = []dataset.Entry{}
		}
		writeJSON(w, http.StatusOK, es)
		return nil
	}
	out := []DatasetVersion{}
	for _, e := range es {
		if e.Problem != "" || (c.Role == RoleResearcher && e.Class != "public" && e.Class != "synthetic") {
			continue
		}
		out = append(out, DatasetVersion{Name: e.Name, Version: e.Version, Class: e.Class})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DatasetShow is a dataset version as a steward sees it.
type DatasetShow struct {
	Manifest *dataset.Manifest      `json:"manifest"`
	Quality  *dataset.QualityReport `json:"quality"`
}

func (s *Server) showDataset(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 0 {
		return errBad(fmt.Sprintf("version: %q is not a version number (0 for the latest)", r.PathValue("version")))
	}
	m, q, err := s.e.Datasets.Show(r.Context(), r.PathValue("name"), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DatasetShow{Manifest: m, Quality: q})
	return nil
}
