// Package storetest is the conformance suite of store.Store. Every store
// (store/sqlite, store/postgres) runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "reeve.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks every method and every rule that store.Store documents:
// the error codes, optimistic concurrency on state versions, idempotency,
// ordering and paging, that times round-trip to the microsecond, and that
// concurrent claims hand each run to one agent. ClaimAcrossReplicas checks
// the claim through several stores on one database; RunBenchmarks measures
// batched task-state writes.
package storetest

import (
	"testing"

	"github.com/reevehq/reeve/internal/store"
)

// Run runs the conformance suite. open must return an empty, migrated store
// of its own for each call and close it when the test ends; subtests run in
// parallel, each with its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	t.Run("Project", func(t *testing.T) { t.Parallel(); testProjects(t, open) })
	t.Run("Flow", func(t *testing.T) { t.Parallel(); testFlows(t, open) })
	t.Run("FlowRun", func(t *testing.T) { t.Parallel(); testFlowRuns(t, open) })
	t.Run("ListFlowRuns", func(t *testing.T) { t.Parallel(); testListFlowRuns(t, open) })
	t.Run("RunFilter", func(t *testing.T) { t.Parallel(); testRunFilters(t, open) })
	t.Run("TaskRun", func(t *testing.T) { t.Parallel(); testTaskRuns(t, open) })
	t.Run("History", func(t *testing.T) { t.Parallel(); testHistory(t, open) })
	t.Run("Log", func(t *testing.T) { t.Parallel(); testLogs(t, open) })
	t.Run("Secret", func(t *testing.T) { t.Parallel(); testSecrets(t, open) })
	t.Run("Token", func(t *testing.T) { t.Parallel(); testTokens(t, open) })
	t.Run("Schedule", func(t *testing.T) { t.Parallel(); testSchedules(t, open) })
	t.Run("Agent", func(t *testing.T) { t.Parallel(); testAgents(t, open) })
	t.Run("Claim", func(t *testing.T) { t.Parallel(); testClaims(t, open) })
	t.Run("Lookup", func(t *testing.T) { t.Parallel(); testLookups(t, open) })
	t.Run("Attempt", func(t *testing.T) { t.Parallel(); testAttempts(t, open) })
	t.Run("Fencing", func(t *testing.T) { t.Parallel(); testFencing(t, open) })
	t.Run("RunHeartbeat", func(t *testing.T) { t.Parallel(); testRunHeartbeats(t, open) })
	t.Run("Recover", func(t *testing.T) { t.Parallel(); testRecoveries(t, open) })
	t.Run("ListByAgent", func(t *testing.T) { testListByAgent(t, open) })
	t.Run("Result", func(t *testing.T) { t.Parallel(); testResults(t, open) })
}
