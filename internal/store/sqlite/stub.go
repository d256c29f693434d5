package sqlite

// Temporary stubs while the store grows secrets, tokens, schedules and
// agents; each is replaced by its implementation.

import (
	"context"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

var errTODO = reeve.Errorf(reeve.CodeUnavailable, "not implemented yet")

func (s *Store) CreateSchedule(ctx context.Context, sc store.Schedule) (store.Schedule, error) {
	return store.Schedule{}, errTODO
}
func (s *Store) GetSchedule(ctx context.Context, id string) (store.Schedule, error) {
	return store.Schedule{}, errTODO
}
func (s *Store) ListSchedules(ctx context.Context, flowID string) ([]store.Schedule, error) {
	return nil, errTODO
}
func (s *Store) SetSchedulePaused(ctx context.Context, id string, paused bool) (store.Schedule, int, error) {
	return store.Schedule{}, 0, errTODO
}
func (s *Store) DeleteSchedule(ctx context.Context, id string) error { return errTODO }
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
