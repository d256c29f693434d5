package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// defaultClaimWait is how long a claim waits for a run by default.
const defaultClaimWait = 30 * time.Second

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ts, err := s.store.ListTokens(r.Context())
	if err != nil {
		return nil, err
	}
	return api.Tokens{Tokens: mapSlice(ts, apiToken)}, nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.CreateToken
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(req.Name) == "" || len(req.Name) > 128:
		return nil, invalid("token name %q is not valid: give 1 to 128 characters that say who uses it", req.Name)
	case req.Role == api.RoleRun:
		return nil, invalid("run tokens are minted for one flow run (POST /flow_runs/{id}/tokens), not created here")
	case req.Role != api.RoleAdmin && req.Role != api.RoleDeveloper && req.Role != api.RoleAgent:
		return nil, invalid("token role %q is not valid: use admin, developer or agent", req.Role)
	case !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(s.now()):
		return nil, invalid("expires_at %s is not in the future", req.ExpiresAt.Format(time.RFC3339))
	}
	return s.mintToken(r.Context(), store.Token{Name: req.Name, Role: req.Role, ExpiresAt: req.ExpiresAt})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	t, err := s.store.RevokeToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiToken(t), nil
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	as, err := s.store.ListAgents(r.Context())
	if err != nil {
		return nil, err
	}
	return api.Agents{Agents: mapSlice(as, apiAgent)}, nil
}

func (s *Server) registerAgent(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.RegisterAgent
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	if !namePattern.MatchString(req.Name) {
		return nil, invalid("agent name %q is not valid: use 1 to 63 lower-case letters, digits, '-', '_' or '.'", req.Name)
	}
	for _, l := range req.Labels {
		if l == "" || len(l) > 128 || strings.ContainsAny(l, " \t\n,") {
			return nil, invalid("label %q is not valid: use 1 to 128 characters without spaces or commas", l)
		}
	}
	for _, k := range req.StorageKinds {
		if !slices.Contains(api.StorageKinds, k) {
			return nil, invalid("storage kind %q is not valid: use %s, or none for every kind", k, strings.Join(api.StorageKinds, " or "))
		}
	}
	a, err := s.store.RegisterAgent(r.Context(), req.Name, sortedSet(req.Labels), sortedSet(req.StorageKinds))
	if err != nil {
		return nil, err
	}
	return apiAgent(a), nil
}

// sortedSet returns a sorted copy of ss without repeats.
func sortedSet(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	a, err := s.store.HeartbeatAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiAgent(a), nil
}

// claim waits up to the asked time for a due run the agent's labels cover,
// of a storage kind it runs, and claims it. It looks again as soon as this replica creates a run, and
// every poll interval for runs created by other replicas or coming due.
func (s *Server) claim(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	q := newQuery(r)
	wait := q.duration("wait", defaultClaimWait)
	if q.err != nil {
		return nil, q.err
	}
	wait = min(wait, s.maxWait)
	ctx := r.Context()
	id := r.PathValue("id")
	agent, err := s.store.HeartbeatAgent(ctx, id) // a claim is a sign of life
	if err != nil {
		return nil, err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	for {
		wake := s.hub.runsChanged()
		run, err := s.store.ClaimFlowRun(ctx, agent.ID, s.now())
		if err == nil && ctx.Err() != nil {
			// The agent left (or the server stops) while the claim was
			// made: nobody will get the answer, so hand the run back
			// rather than leave it Submitted until the submit timeout.
			if _, err := s.store.SetFlowRunState(context.WithoutCancel(ctx), run.ID, run.Version, state.State{
				Kind: state.Scheduled, Message: fmt.Sprintf("handed back: agent %q left before its claim was answered", agent.Name),
			}); err != nil {
				s.log.WarnContext(ctx, "a claimed run could not be handed back; the run monitor will re-queue it", "flow_run", run.ID, "err", err)
			}
			return nil, nil
		}
		if err == nil {
			return s.claimed(r, run)
		}
		if ctx.Err() != nil {
			return nil, nil // the agent left, or the server stops: nothing claimed
		}
		if !errors.Is(err, reeve.ErrNotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-deadline.C:
			return nil, nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// claimed answers a claim with the run, its flow version and a run token.
func (s *Server) claimed(r *http.Request, run store.FlowRun) (any, error) {
	ctx := r.Context()
	s.metrics.claims.Observe(s.now().Sub(due(run)).Seconds())
	v, err := s.store.GetFlowVersion(ctx, run.FlowVersionID)
	if err != nil {
		return nil, err
	}
	tok, err := s.mintRunToken(ctx, run)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "flow run claimed", "flow_run", run.ID, "agent", run.AgentID)
	return api.Claim{FlowRun: apiFlowRun(run), FlowVersion: apiFlowVersion(v), Token: tok.Secret}, nil
}
