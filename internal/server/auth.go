package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/store"
)

// tokenPrefix starts every token, so a leaked one is recognisable (and
// secret scanners can find it).
const tokenPrefix = "reeve_"

// runTokenGrace is how long a run token still appends logs after its run
// finished, for the last lines in flight.
const runTokenGrace = 30 * time.Second

// caller is who made a request.
type caller struct {
	token store.Token
	run   *store.FlowRun // run tokens: their run, loaded when authenticating
}

// NewTokenSecret returns a fresh token secret.
func NewTokenSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on a broken source)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the hash under which a token is stored.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// authenticate finds the caller's token and checks that its role may call
// rt (run tokens: only for their own, unfinished run).
func (s *Server) authenticate(r *http.Request, rt api.Route) (*caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, reeve.Errorf(reeve.CodeUnauthorized, "no API token: send \"Authorization: Bearer <token>\" (reeve login, or REEVE_TOKEN)")
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 256 {
		return nil, reeve.Errorf(reeve.CodeUnauthorized, "the Authorization header is not \"Bearer reeve_...\": send an API token")
	}
	t, err := s.store.TokenByHash(r.Context(), HashToken(secret))
	if errors.Is(err, reeve.ErrNotFound) {
		return nil, reeve.Errorf(reeve.CodeUnauthorized, "unknown API token: check it, or create one with reeve token create")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	now := s.now()
	switch {
	case !t.RevokedAt.IsZero():
		return nil, reeve.Errorf(reeve.CodeUnauthorized, "API token %q was revoked: use another one", t.Name)
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return nil, reeve.Errorf(reeve.CodeUnauthorized, "API token %q expired at %s: create a new one", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	c := &caller{token: t}
	if t.Role != store.RoleRun {
		if !slices.Contains(rt.Roles, t.Role) {
			return nil, forbidden(t.Role, rt)
		}
		return c, nil
	}
	// A run token: only run-scoped routes of its own run (and its run's
	// flow version), while it runs.
	version := strings.HasPrefix(rt.Path, "/flow_versions/")
	if !rt.RunScoped || (!version && r.PathValue("id") != t.FlowRunID) {
		return nil, forbidden(t.Role, rt)
	}
	run, err := s.store.GetFlowRun(r.Context(), t.FlowRunID)
	if err != nil {
		return nil, fmt.Errorf("authenticate run token: %w", err)
	}
	if version && r.PathValue("id") != run.FlowVersionID {
		return nil, forbidden(t.Role, rt)
	}
	if run.State.Kind.Finished() {
		late := rt.Method == http.MethodPost && strings.HasSuffix(rt.Path, "/logs") && now.Sub(run.UpdatedAt) < runTokenGrace
		if !late {
			return nil, reeve.Errorf(reeve.CodeUnauthorized, "the run token of flow run %s expired: the run finished (%s)", run.ID, run.State.Kind)
		}
	}
	c.run = &run
	return c, nil
}

// forbidden says which roles may call rt.
func forbidden(role string, rt api.Route) error {
	who := strings.Join(rt.Roles, ", ")
	if rt.RunScoped {
		if who != "" {
			who += ", or "
		}
		who += "the run's own run token"
	}
	return reeve.Errorf(reeve.CodeForbidden, "a %s token may not %s %s: it needs %s", role, rt.Method, api.Prefix+rt.Path, who)
}

// mintToken creates a token and returns it with its secret.
func (s *Server) mintToken(ctx context.Context, t store.Token) (api.NewToken, error) {
	secret := NewTokenSecret()
	t.Hash = HashToken(secret)
	t, err := s.store.CreateToken(ctx, t)
	if err != nil {
		return api.NewToken{}, err
	}
	return api.NewToken{Token: apiToken(t), Secret: secret}, nil
}

// Bootstrap prepares a new database: it creates the "default" project if
// there is none, and makes sure an admin token exists. With adminSecret
// (REEVE_ADMIN_TOKEN) it records that token if it is not known yet;
// without, and with no admin token yet, it mints one and returns its
// secret for the operator (created=true): shown once, never again.
func (s *Server) Bootstrap(ctx context.Context, adminSecret string) (secret string, created bool, err error) {
	if _, err := s.store.CreateProject(ctx, store.Project{Name: DefaultProject, Description: "The project of flows registered without one."}); err != nil && !errors.Is(err, reeve.ErrConflict) {
		return "", false, fmt.Errorf("bootstrap: create the default project: %w", err)
	}
	if adminSecret != "" {
		if !strings.HasPrefix(adminSecret, tokenPrefix) || len(adminSecret) < len(tokenPrefix)+20 {
			return "", false, reeve.Errorf(reeve.CodeInvalid, "REEVE_ADMIN_TOKEN must start with %q and have at least 20 more characters: make one with `reeve token generate` or `echo reeve_$(openssl rand -hex 24)`", tokenPrefix)
		}
		_, err := s.store.TokenByHash(ctx, HashToken(adminSecret))
		if err == nil {
			return "", false, nil
		}
		if !errors.Is(err, reeve.ErrNotFound) {
			return "", false, fmt.Errorf("bootstrap: %w", err)
		}
		if _, err := s.store.CreateToken(ctx, store.Token{Name: "admin (REEVE_ADMIN_TOKEN)", Role: store.RoleAdmin, Hash: HashToken(adminSecret)}); err != nil && !errors.Is(err, reeve.ErrConflict) {
			return "", false, fmt.Errorf("bootstrap: record REEVE_ADMIN_TOKEN: %w", err)
		}
		return "", false, nil
	}
	tokens, err := s.store.ListTokens(ctx)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: %w", err)
	}
	for _, t := range tokens {
		if t.Role == store.RoleAdmin && t.RevokedAt.IsZero() {
			return "", false, nil
		}
	}
	nt, err := s.mintToken(ctx, store.Token{Name: "first admin", Role: store.RoleAdmin})
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: create the first admin token: %w", err)
	}
	return nt.Secret, true, nil
}

// DefaultProject is the project of requests that name none.
const DefaultProject = "default"
