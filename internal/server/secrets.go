package server

import (
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/spec"
)

// maxSecretBytes is the largest secret value.
const maxSecretBytes = 64 << 10

// secretAAD binds a sealed value to its secret.
func secretAAD(projectID, name string) []byte { return []byte(projectID + "/" + name) }

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	p, err := s.project(r.Context(), r.URL.Query().Get("project"))
	if err != nil {
		return nil, err
	}
	secs, err := s.store.ListSecrets(r.Context(), p.ID)
	if err != nil {
		return nil, err
	}
	return api.Secrets{Secrets: mapSlice(secs, apiSecret)}, nil
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.SetSecret
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	switch {
	case req.Value == "":
		return nil, invalid("secret %q: value is empty: give a value (reeve secret set reads it from stdin or a file)", name)
	case len(req.Value) > maxSecretBytes:
		return nil, invalid("secret %q: value is %d bytes long: keep it under %d", name, len(req.Value), maxSecretBytes)
	case !utf8.ValidString(req.Value):
		return nil, invalid("secret %q: value is not UTF-8 text: encode binary values (base64)", name)
	}
	ctx := r.Context()
	p, err := s.project(ctx, req.Project)
	if err != nil {
		return nil, err
	}
	sealed := s.sealer.Seal([]byte(req.Value), secretAAD(p.ID, name))
	sec, err := s.store.PutSecret(ctx, p.ID, name, sealed)
	if err != nil {
		return nil, err
	}
	return apiSecret(sec), nil
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	p, err := s.project(r.Context(), r.URL.Query().Get("project"))
	if err != nil {
		return nil, err
	}
	return nil, s.store.DeleteSecret(r.Context(), p.ID, r.PathValue("name"))
}

// readRunSecret gives a run's own token a secret its flow declares.
func (s *Server) readRunSecret(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	if c.run == nil { // authenticate lets only run tokens through
		return nil, reeve.Errorf(reeve.CodeForbidden, "only a flow run's own run token may read its secrets")
	}
	v, err := s.store.GetFlowVersion(ctx, c.run.FlowVersionID)
	if err != nil {
		return nil, err
	}
	sp, err := spec.Decode(v.Spec)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(sp.Secrets, func(d spec.Secret) bool { return d.Name == name }) {
		return nil, reeve.Errorf(reeve.CodeForbidden, "flow %q does not declare secret %q: add it to the flow's Secrets option and register the flow again", sp.Name, name)
	}
	sec, err := s.store.GetSecret(ctx, c.run.ProjectID, name)
	if err != nil {
		return nil, err
	}
	plain, err := s.sealer.Open(sec.Value, secretAAD(sec.ProjectID, name))
	if err != nil {
		return nil, err
	}
	return api.SecretValue{Name: name, Value: string(plain)}, nil
}
