package postgres

// Temporary stubs while the store grows secrets, tokens, schedules and
// agents; each is replaced by its implementation.

import (
	"context"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

var errTODO = reeve.Errorf(reeve.CodeUnavailable, "not implemented yet")

func (s *Store) RegisterAgent(ctx context.Context, name string, labels []string) (store.Agent, error) {
	return store.Agent{}, errTODO
}
func (s *Store) HeartbeatAgent(ctx context.Context, id string) (store.Agent, error) {
	return store.Agent{}, errTODO
}
func (s *Store) ListAgents(ctx context.Context) ([]store.Agent, error) { return nil, errTODO }
func (s *Store) ClaimFlowRun(ctx context.Context, agentID string, now time.Time) (store.FlowRun, error) {
	return store.FlowRun{}, errTODO
}
