package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// requireAgent fails unless got is want as stored.
func requireAgent(tb testing.TB, got, want store.Agent) {
	tb.Helper()
	if got.ID != want.ID || got.Name != want.Name {
		tb.Errorf("agent = %+v, want %+v", got, want)
	}
	requireLabels(tb, "agent labels", got.Labels, want.Labels)
	if got.Labels == nil {
		tb.Errorf("agent %s: labels are nil, want a slice, empty when there are none", got.Name)
	}
	requireLabels(tb, "agent storage kinds", got.StorageKinds, want.StorageKinds)
	if got.StorageKinds == nil {
		tb.Errorf("agent %s: storage kinds are nil, want a slice, empty when there are none", got.Name)
	}
	requireTime(tb, "agent created_at", got.CreatedAt, want.CreatedAt)
	requireTime(tb, "agent last_seen_at", got.LastSeenAt, want.LastSeenAt)
}

func testAgents(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Register", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		a, err := s.RegisterAgent(ctx, "agent-1", []string{"linux", "gpu"}, []string{"local"})
		requireNoError(t, err, "RegisterAgent")
		if a.ID == "" || a.Name != "agent-1" {
			t.Errorf("RegisterAgent = %+v, want an ID and name agent-1", a)
		}
		requireLabels(t, "labels", a.Labels, []string{"linux", "gpu"})
		requireLabels(t, "storage kinds", a.StorageKinds, []string{"local"})
		requireRecent(t, "created_at", a.CreatedAt)
		requireTime(t, "last_seen_at", a.LastSeenAt, a.CreatedAt)

		bare := registerAgent(t, s, "bare")
		if bare.Labels == nil || len(bare.Labels) != 0 {
			t.Errorf("agent without labels: labels %#v, want empty", bare.Labels)
		}
		if bare.StorageKinds == nil || len(bare.StorageKinds) != 0 {
			t.Errorf("agent without storage kinds: kinds %#v, want empty", bare.StorageKinds)
		}

		boundary()
		again, err := s.RegisterAgent(ctx, "agent-1", []string{"docker"}, []string{"docker", "local"})
		requireNoError(t, err, "RegisterAgent again")
		if again.ID != a.ID {
			t.Errorf("registering a known name made agent %s, want the same agent %s", again.ID, a.ID)
		}
		requireLabels(t, "new labels", again.Labels, []string{"docker"})
		requireLabels(t, "new storage kinds", again.StorageKinds, []string{"docker", "local"})
		requireTime(t, "created_at after registering again", again.CreatedAt, a.CreatedAt)
		if !again.LastSeenAt.After(a.LastSeenAt) {
			t.Errorf("last_seen_at after registering again = %v, want after %v", again.LastSeenAt, a.LastSeenAt)
		}
		list, err := s.ListAgents(ctx)
		requireNoError(t, err, "ListAgents")
		if len(list) != 2 {
			t.Fatalf("ListAgents = %+v, want agent-1 and bare", list)
		}
		requireAgent(t, list[0], again)
		requireAgent(t, list[1], bare)
	})

	t.Run("EmptyNameIsInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.RegisterAgent(t.Context(), "", []string{"linux"}, nil)
		requireErrorIs(t, err, reeve.ErrInvalid)
	})

	t.Run("EmptyStorageKindIsInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.RegisterAgent(t.Context(), "agent-1", nil, []string{"local", ""})
		requireErrorIs(t, err, reeve.ErrInvalid, "agent-1")
		list, err := s.ListAgents(t.Context())
		requireNoError(t, err, "ListAgents")
		if len(list) != 0 {
			t.Errorf("ListAgents after a refused registration = %+v, want none", list)
		}
	})

	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		a := registerAgent(t, s, "agent-1", "linux")
		boundary()
		beat, err := s.HeartbeatAgent(ctx, a.ID)
		requireNoError(t, err, "HeartbeatAgent")
		if !beat.LastSeenAt.After(a.LastSeenAt) {
			t.Errorf("last_seen_at after a heartbeat = %v, want after %v", beat.LastSeenAt, a.LastSeenAt)
		}
		want := a
		want.LastSeenAt = beat.LastSeenAt
		requireAgent(t, beat, want)
		list, err := s.ListAgents(ctx)
		requireNoError(t, err, "ListAgents")
		if len(list) != 1 {
			t.Fatalf("ListAgents = %+v, want one agent", list)
		}
		requireAgent(t, list[0], want)

		const id = "0190c7a4-0000-7000-8000-000000000040"
		_, err = s.HeartbeatAgent(ctx, id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("ListByName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		list, err := s.ListAgents(t.Context())
		requireNoError(t, err, "ListAgents on an empty store")
		if len(list) != 0 {
			t.Fatalf("ListAgents on an empty store = %+v", list)
		}
		for _, name := range []string{"charlie", "alpha", "bravo"} {
			registerAgent(t, s, name)
		}
		list, err = s.ListAgents(t.Context())
		requireNoError(t, err, "ListAgents")
		var names []string
		for _, a := range list {
			names = append(names, a.Name)
		}
		if want := []string{"alpha", "bravo", "charlie"}; !slices.Equal(names, want) {
			t.Errorf("ListAgents names = %q, want %q", names, want)
		}
	})
}

func testClaims(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Claim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		a := registerAgent(t, s, "agent-1", "linux")

		run, err := s.ClaimFlowRun(ctx, a.ID, time.Now())
		requireNoError(t, err, "ClaimFlowRun")
		if run.ID != f.run.ID || run.AgentID != a.ID || run.Version != 2 || run.State.Kind != state.Submitted {
			t.Errorf("ClaimFlowRun = run %s, agent %q, version %d, %s; want run %s, agent %s, version 2, Submitted",
				run.ID, run.AgentID, run.Version, run.State.Kind, f.run.ID, a.ID)
		}
		if !strings.Contains(run.State.Message, `"agent-1"`) {
			t.Errorf("claimed state message %q does not name the agent", run.State.Message)
		}
		requireRecent(t, "state time", run.State.Time)
		requireRecent(t, "updated_at", run.UpdatedAt)
		requireTime(t, "created_at", run.CreatedAt, f.run.CreatedAt)
		requireTime(t, "scheduled_at", run.ScheduledAt, f.run.ScheduledAt)
		requireRun(t, getRun(t, s, run.ID), run)
		requireHistory(t, "history", history(t, s, run.ID, ""), []state.State{f.run.State, run.State})

		// Claimed once: no second claim, by this agent or another.
		_, err = s.ClaimFlowRun(ctx, a.ID, time.Now())
		requireErrorIs(t, err, reeve.ErrNotFound, "agent-1")
		b := registerAgent(t, s, "agent-2", "linux")
		_, err = s.ClaimFlowRun(ctx, b.ID, time.Now())
		requireErrorIs(t, err, reeve.ErrNotFound, "agent-2")

		// The claim moved the version on: a writer that read the run
		// before it loses.
		_, err = s.SetFlowRunState(ctx, run.ID, 1, state.State{Kind: state.Cancelled})
		requireErrorIs(t, err, reeve.ErrConflict)
		_, err = s.SetFlowRunState(ctx, run.ID, 2, state.State{Kind: state.Running})
		requireNoError(t, err, "SetFlowRunState after the claim")
	})

	t.Run("UnknownAgentIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		const id = "0190c7a4-0000-7000-8000-000000000041"
		_, err := s.ClaimFlowRun(t.Context(), id, time.Now())
		requireErrorIs(t, err, reeve.ErrNotFound, id)
		requireRun(t, getRun(t, s, f.run.ID), f.run)
	})

	t.Run("NothingDueIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := registerAgent(t, s, "idle")
		_, err := s.ClaimFlowRun(t.Context(), a.ID, time.Now())
		requireErrorIs(t, err, reeve.ErrNotFound, "idle")
	})

	t.Run("EarliestDueFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		a := registerAgent(t, s, "agent-1")
		base := time.Now().Truncate(time.Microsecond)
		mk := func(ago time.Duration) store.FlowRun {
			return createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: base.Add(-ago)})
		}
		r2, r1, r3 := mk(2*time.Minute), mk(3*time.Minute), mk(time.Minute)
		// Two runs due at one time go by ID.
		t1, t2 := mk(30*time.Second), mk(30*time.Second)
		if t2.ID < t1.ID {
			t1, t2 = t2, t1
		}
		future := mk(-time.Hour)
		running := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: base.Add(-time.Hour),
			State: state.State{Kind: state.Running}})
		pending := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: base.Add(-time.Hour),
			State: state.State{Kind: state.Pending, Message: "waiting"}})

		for i, want := range []store.FlowRun{r1, r2, r3, t1, t2} {
			got, err := s.ClaimFlowRun(ctx, a.ID, base)
			requireNoError(t, err, "ClaimFlowRun %d", i)
			if got.ID != want.ID {
				t.Errorf("claim %d = run %s scheduled at %v, want run %s scheduled at %v",
					i, got.ID, got.ScheduledAt, want.ID, want.ScheduledAt)
			}
		}
		// Only Scheduled runs are claimed, and only due ones: the rest
		// waits for its time, which is inclusive.
		_, err := s.ClaimFlowRun(ctx, a.ID, base)
		requireErrorIs(t, err, reeve.ErrNotFound)
		_, err = s.ClaimFlowRun(ctx, a.ID, future.ScheduledAt.Add(-time.Microsecond))
		requireErrorIs(t, err, reeve.ErrNotFound)
		got, err := s.ClaimFlowRun(ctx, a.ID, future.ScheduledAt)
		requireNoError(t, err, "ClaimFlowRun at the future run's time")
		if got.ID != future.ID {
			t.Errorf("claim at %v = run %s, want %s", future.ScheduledAt, got.ID, future.ID)
		}
		requireRun(t, getRun(t, s, running.ID), running)
		requireRun(t, getRun(t, s, pending.ID), pending)
	})

	t.Run("Labels", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			run, agent []string
			claimable  bool
		}{
			{nil, nil, true},
			{nil, []string{"linux"}, true},
			{[]string{"gpu"}, []string{"linux"}, false},
			{[]string{"gpu"}, nil, false},
			{[]string{"gpu"}, []string{"gpu"}, true},
			{[]string{"gpu"}, []string{"linux", "gpu"}, true},
			{[]string{"gpu", "linux"}, []string{"linux", "gpu", "docker"}, true},
			{[]string{"gpu", "linux"}, []string{"gpu"}, false},
			{[]string{"gpu", "linux"}, []string{"linux"}, false},
			{[]string{"GPU"}, []string{"gpu"}, false},
			{[]string{"gpu"}, []string{"gpu-large"}, false},
			{[]string{"region=eu"}, []string{"region=eu", "os=linux"}, true},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("run%q/agent%q", c.run, c.agent), func(t *testing.T) {
				t.Parallel()
				s := open(t)
				createProject(t, s, "etl")
				v := register(t, s, registration("etl", "nightly", "h"))
				run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, Labels: c.run})
				a := registerAgent(t, s, "agent", c.agent...)
				got, err := s.ClaimFlowRun(t.Context(), a.ID, time.Now())
				if !c.claimable {
					requireErrorIs(t, err, reeve.ErrNotFound)
					requireRun(t, getRun(t, s, run.ID), run)
					return
				}
				requireNoError(t, err, "ClaimFlowRun")
				if got.ID != run.ID {
					t.Errorf("claimed run %s, want %s", got.ID, run.ID)
				}
				requireLabels(t, "claimed run labels", got.Labels, c.run)
			})
		}
	})

	t.Run("LabelsPassOverRunsAgentCannotTake", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		base := time.Now()
		gpu := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, Labels: []string{"gpu"}, ScheduledAt: base.Add(-2 * time.Minute)})
		plain := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: base.Add(-time.Minute)})
		linux := registerAgent(t, s, "linux-1", "linux")
		got, err := s.ClaimFlowRun(ctx, linux.ID, base)
		requireNoError(t, err, "ClaimFlowRun(linux)")
		if got.ID != plain.ID {
			t.Errorf("linux agent claimed %s, want the unlabelled run %s behind the gpu run", got.ID, plain.ID)
		}
		_, err = s.ClaimFlowRun(ctx, linux.ID, base)
		requireErrorIs(t, err, reeve.ErrNotFound)
		// New labels apply to the next claim.
		linux = registerAgent(t, s, "linux-1", "linux", "gpu")
		got, err = s.ClaimFlowRun(ctx, linux.ID, base)
		requireNoError(t, err, "ClaimFlowRun(linux, gpu)")
		if got.ID != gpu.ID {
			t.Errorf("re-registered agent claimed %s, want the gpu run %s", got.ID, gpu.ID)
		}
	})

	t.Run("StorageKinds", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			storage   string   // the run's flow version's storage kind
			agent     []string // the agent's storage kinds
			claimable bool
		}{
			{"local", nil, true},
			{"docker", nil, true},
			{"local", []string{"local"}, true},
			{"docker", []string{"docker"}, true},
			{"local", []string{"docker"}, false},
			{"docker", []string{"local"}, false},
			{"docker", []string{"local", "docker"}, true},
			{"local", []string{"docker", "local"}, true},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/agent%q", c.storage, c.agent), func(t *testing.T) {
				t.Parallel()
				s := open(t)
				createProject(t, s, "etl")
				v := register(t, s, kindRegistration("etl", "nightly", c.storage))
				run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
				a := registerKindAgent(t, s, "agent", c.agent...)
				got, err := s.ClaimFlowRun(t.Context(), a.ID, time.Now())
				if !c.claimable {
					requireErrorIs(t, err, reeve.ErrNotFound, "agent")
					requireRun(t, getRun(t, s, run.ID), run)
					return
				}
				requireNoError(t, err, "ClaimFlowRun")
				if got.ID != run.ID {
					t.Errorf("claimed run %s, want %s", got.ID, run.ID)
				}
			})
		}
	})

	t.Run("StorageKindsPassOverRunsAgentCannotTake", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		local := register(t, s, kindRegistration("etl", "scripts", "local"))
		docker := register(t, s, kindRegistration("etl", "images", "docker"))
		base := time.Now()
		// Oldest first: a local run, a docker run, then one of each again.
		l1 := createRun(t, s, store.FlowRun{FlowVersionID: local.ID, ScheduledAt: base.Add(-4 * time.Minute)})
		d1 := createRun(t, s, store.FlowRun{FlowVersionID: docker.ID, ScheduledAt: base.Add(-3 * time.Minute)})
		l2 := createRun(t, s, store.FlowRun{FlowVersionID: local.ID, ScheduledAt: base.Add(-2 * time.Minute)})
		d2 := createRun(t, s, store.FlowRun{FlowVersionID: docker.ID, ScheduledAt: base.Add(-time.Minute)})
		d3 := createRun(t, s, store.FlowRun{FlowVersionID: docker.ID, ScheduledAt: base.Add(-time.Minute / 2)})

		dockerAgent := registerKindAgent(t, s, "docker-1", "docker")
		processAgent := registerKindAgent(t, s, "process-1", "local")
		claim := func(a store.Agent, want store.FlowRun, what string) {
			t.Helper()
			got, err := s.ClaimFlowRun(ctx, a.ID, base)
			requireNoError(t, err, "ClaimFlowRun(%s) for %s", a.Name, what)
			if got.ID != want.ID {
				t.Errorf("%s claimed %s, want %s (%s)", a.Name, got.ID, want.ID, what)
			}
		}
		claim(dockerAgent, d1, "the oldest docker run, behind a local one")
		claim(dockerAgent, d2, "the next docker run, behind a local one")
		claim(processAgent, l1, "the oldest local run")
		claim(processAgent, l2, "the next local run, behind none of its kind")
		_, err := s.ClaimFlowRun(ctx, processAgent.ID, base)
		requireErrorIs(t, err, reeve.ErrNotFound, "process-1")
		requireRun(t, getRun(t, s, d3.ID), d3)

		// New kinds apply to the next claim; none means every kind.
		processAgent = registerKindAgent(t, s, "process-1")
		if len(processAgent.StorageKinds) != 0 {
			t.Errorf("re-registered without kinds: kinds %q, want none", processAgent.StorageKinds)
		}
		claim(processAgent, d3, "a docker run, once it runs every kind")
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		var agents []store.Agent
		for i := range 4 {
			agents = append(agents, registerAgent(t, s, fmt.Sprintf("agent-%d", i), "linux"))
		}
		const runs, claimers = 60, 12
		ids := make(map[string]bool)
		for range runs {
			ids[createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: time.Now().Add(-time.Minute)}).ID] = true
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			claimed = make(map[string]string) // run → agent
		)
		for i := range claimers {
			wg.Go(func() {
				agent := agents[i%len(agents)]
				for {
					run, err := s.ClaimFlowRun(t.Context(), agent.ID, time.Now())
					if errors.Is(err, reeve.ErrNotFound) {
						return
					}
					if err != nil {
						t.Errorf("claimer %d: ClaimFlowRun: %v", i, err)
						return
					}
					mu.Lock()
					if prev, ok := claimed[run.ID]; ok {
						t.Errorf("run %s claimed twice, by %s and %s", run.ID, prev, agent.ID)
					}
					claimed[run.ID] = agent.ID
					mu.Unlock()
					if run.AgentID != agent.ID {
						t.Errorf("run claimed by %s has agent %s", agent.ID, run.AgentID)
					}
				}
			})
		}
		wg.Wait()
		if len(claimed) != runs {
			t.Errorf("%d of %d runs claimed", len(claimed), runs)
		}
		for id := range ids {
			run := getRun(t, s, id)
			if run.State.Kind != state.Submitted || run.Version != 2 || run.AgentID != claimed[id] {
				t.Errorf("run %s: %s version %d agent %q, want Submitted version 2 agent %q",
					id, run.State.Kind, run.Version, run.AgentID, claimed[id])
			}
			if h := history(t, s, id, ""); len(h) != 2 || h[1].Kind != state.Submitted {
				t.Errorf("run %s: history %v, want Scheduled then one Submitted", id, h)
			}
		}
	})
}

// ClaimAcrossReplicas checks that runs are claimed exactly once when
// several agents claim them through several stores on one database, as
// server replicas do: it registers agents agents, creates runs due runs,
// and has every agent claim until none is left, turn by turn through each
// replica. replicas must share one empty database.
func ClaimAcrossReplicas(t *testing.T, replicas []store.Store, agents, runs int) {
	t.Helper()
	ctx := t.Context()
	first := replicas[0]
	createProject(t, first, "replicas")
	v := register(t, first, registration("replicas", "claimed", "h"))
	as := make([]store.Agent, agents)
	for i := range as {
		// Each replica registers some agents; all see all of them.
		as[i] = registerAgent(t, replicas[i%len(replicas)], fmt.Sprintf("agent-%d", i), "linux", "docker")
	}
	due := time.Now().Add(-time.Minute)
	for i := range runs {
		r := store.FlowRun{FlowVersionID: v.ID, ScheduledAt: due.Add(time.Duration(i%50) * time.Millisecond)}
		if i%3 == 0 {
			r.Labels = []string{"docker"}
		}
		createRun(t, replicas[i%len(replicas)], r)
	}

	type claim struct{ agent, replica int }
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = make(map[string]claim, runs)
		perRep  = make([]int, len(replicas))
		perAg   = make([]int, agents)
	)
	start := time.Now()
	for i, a := range as {
		wg.Go(func() {
			for turn := 0; ; turn++ {
				rep := (i + turn) % len(replicas)
				run, err := replicas[rep].ClaimFlowRun(ctx, a.ID, time.Now())
				if errors.Is(err, reeve.ErrNotFound) {
					return
				}
				if err != nil {
					t.Errorf("agent %d on replica %d: ClaimFlowRun: %v", i, rep, err)
					return
				}
				mu.Lock()
				if prev, ok := claimed[run.ID]; ok {
					t.Errorf("run %s claimed twice: by agent %d on replica %d, and by agent %d on replica %d",
						run.ID, prev.agent, prev.replica, i, rep)
				}
				claimed[run.ID] = claim{i, rep}
				perRep[rep]++
				perAg[i]++
				mu.Unlock()
				if run.AgentID != a.ID || run.State.Kind != state.Submitted || run.Version != 2 {
					t.Errorf("agent %d claimed run %s: agent %q, %s, version %d; want agent %s, Submitted, version 2",
						i, run.ID, run.AgentID, run.State.Kind, run.Version, a.ID)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d agents claimed %d runs through %d replicas in %v: %v per agent, %v per replica",
		agents, len(claimed), len(replicas), time.Since(start).Round(time.Millisecond), perAg, perRep)
	if len(claimed) != runs {
		t.Errorf("%d of %d runs claimed", len(claimed), runs)
	}

	// Every run, read through every replica: claimed by the agent that got
	// it, and one Submitted in its history.
	var all []store.FlowRun
	for cursor := ""; ; {
		page, next, err := first.ListFlowRuns(ctx, store.FlowRunFilter{FlowID: v.FlowID, Limit: 1000, Cursor: cursor})
		requireNoError(t, err, "ListFlowRuns")
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != runs {
		t.Fatalf("%d runs listed, want %d", len(all), runs)
	}
	for i, run := range all {
		c, ok := claimed[run.ID]
		if !ok {
			t.Errorf("run %s was never claimed: %s", run.ID, run.State.Kind)
			continue
		}
		if run.State.Kind != state.Submitted || run.Version != 2 || run.AgentID != as[c.agent].ID {
			t.Errorf("run %s: %s version %d agent %q, want Submitted version 2 agent %s",
				run.ID, run.State.Kind, run.Version, run.AgentID, as[c.agent].ID)
		}
		h := history(t, replicas[i%len(replicas)], run.ID, "")
		submitted := 0
		for _, st := range h {
			if st.Kind == state.Submitted {
				submitted++
			}
		}
		if len(h) != 2 || submitted != 1 {
			t.Errorf("run %s: history %v, want Scheduled and one Submitted", run.ID, h)
		}
	}
}
