package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

func testProjects(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()

		p, err := s.CreateProject(ctx, store.Project{Name: "etl", Description: "nightly loads"})
		requireNoError(t, err, "CreateProject")
		if p.ID == "" || p.Name != "etl" || p.Description != "nightly loads" {
			t.Errorf("CreateProject = %+v, want an ID, name etl, the description", p)
		}
		requireRecent(t, "created_at", p.CreatedAt)

		got, err := s.GetProject(ctx, "etl")
		requireNoError(t, err, "GetProject")
		if got.ID != p.ID || got.Name != p.Name || got.Description != p.Description {
			t.Errorf("GetProject = %+v, want %+v", got, p)
		}
		requireTime(t, "created_at", got.CreatedAt, p.CreatedAt)
	})

	t.Run("TakenNameIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()

		first := createProject(t, s, "etl")
		_, err := s.CreateProject(ctx, store.Project{Name: "etl", Description: "again"})
		requireErrorIs(t, err, reeve.ErrConflict, "etl")

		ps, err := s.ListProjects(ctx)
		requireNoError(t, err, "ListProjects")
		if len(ps) != 1 || ps[0].ID != first.ID || ps[0].Description != first.Description {
			t.Errorf("after a conflict, projects = %+v, want only %+v", ps, first)
		}
	})

	t.Run("EmptyNameIsInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.CreateProject(t.Context(), store.Project{})
		requireErrorIs(t, err, reeve.ErrInvalid)
	})

	t.Run("GetUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.GetProject(t.Context(), "no-such-project")
		requireErrorIs(t, err, reeve.ErrNotFound, "no-such-project")
	})

	t.Run("ListByName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()

		ps, err := s.ListProjects(ctx)
		requireNoError(t, err, "ListProjects on an empty store")
		if len(ps) != 0 {
			t.Fatalf("ListProjects on an empty store = %+v, want none", ps)
		}
		for _, name := range []string{"charlie", "alpha", "bravo"} {
			createProject(t, s, name)
		}
		ps, err = s.ListProjects(ctx)
		requireNoError(t, err, "ListProjects")
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if want := []string{"alpha", "bravo", "charlie"}; !slices.Equal(names, want) {
			t.Errorf("ListProjects names = %q, want %q", names, want)
		}
	})
}

func testFlows(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("RegisterFirstVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		r := registration("etl", "nightly", "hash-1")

		v, created, err := s.RegisterFlow(ctx, r)
		requireNoError(t, err, "RegisterFlow")
		if !created {
			t.Errorf("RegisterFlow of a new flow: created = false, want true")
		}
		requireFlowVersion(t, v, r, 1, false)
		requireRecent(t, "created_at", v.CreatedAt)

		f, err := s.GetFlow(ctx, "etl", "nightly")
		requireNoError(t, err, "GetFlow")
		if f.ID != v.FlowID || f.ProjectID != p.ID || f.Name != "nightly" || f.LatestVersion != 1 {
			t.Errorf("GetFlow = %+v, want ID %s, project %s, name nightly, latest version 1", f, v.FlowID, p.ID)
		}
		requireRecent(t, "flow created_at", f.CreatedAt)
		requireRecent(t, "flow updated_at", f.UpdatedAt)

		got, err := s.GetFlowVersion(ctx, v.ID)
		requireNoError(t, err, "GetFlowVersion")
		if got.ID != v.ID || got.FlowID != v.FlowID {
			t.Errorf("GetFlowVersion = %+v, want %+v", got, v)
		}
		requireFlowVersion(t, got, r, 1, false)
		requireTime(t, "created_at", got.CreatedAt, v.CreatedAt)
	})

	t.Run("IdenticalRegistrationIsNoop", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		r := registration("etl", "nightly", "hash-1")
		first := register(t, s, r)

		// The spec's hash identifies it: the same hash with the document
		// formatted differently is the same version.
		r.Spec = json.RawMessage(`{` + "\n" + `  "hash": "hash-1", "name": "nightly", "tasks": [{"id": "extract"}, {"id": "load"}]}`)
		r.RunConfig.Env = map[string]string{"A": "1", "B": "2"}
		again, created, err := s.RegisterFlow(ctx, r)
		requireNoError(t, err, "RegisterFlow again")
		if created {
			t.Errorf("RegisterFlow of an unchanged flow: created = true, want false")
		}
		if again.ID != first.ID || again.Version != 1 || again.Archived {
			t.Errorf("RegisterFlow of an unchanged flow = %+v, want the first version %+v", again, first)
		}
		vs, err := s.ListFlowVersions(ctx, first.FlowID)
		requireNoError(t, err, "ListFlowVersions")
		if len(vs) != 1 {
			t.Errorf("after an unchanged registration, %d versions, want 1", len(vs))
		}
	})

	changes := []struct {
		name   string
		change func(r *store.Registration)
	}{
		{"SpecHash", func(r *store.Registration) { r.SpecHash = "hash-2" }},
		{"StorageImage", func(r *store.Registration) {
			r.Storage.Image = "registry.example/etl@sha256:" + fmt.Sprintf("%064d", 2)
		}},
		{"StorageKind", func(r *store.Registration) { r.Storage = store.Storage{Kind: "local", Path: "/opt/etl"} }},
		{"Labels", func(r *store.Registration) { r.Labels = []string{"linux"} }},
		{"NoLabels", func(r *store.Registration) { r.Labels = nil }},
		{"RunConfigWorkers", func(r *store.Registration) { r.RunConfig.Workers = 8 }},
		{"RunConfigEnv", func(r *store.Registration) { r.RunConfig.Env = map[string]string{"A": "1", "B": "3"} }},
		{"RunConfigMemory", func(r *store.Registration) { r.RunConfig.Memory = "1Gi" }},
	}
	for _, c := range changes {
		t.Run("ChangedIsNewVersion/"+c.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			ctx := t.Context()
			createProject(t, s, "etl")
			r := registration("etl", "nightly", "hash-1")
			v1 := register(t, s, r)

			c.change(&r)
			v2, created, err := s.RegisterFlow(ctx, r)
			requireNoError(t, err, "RegisterFlow changed")
			if !created {
				t.Errorf("RegisterFlow of a changed flow: created = false, want true")
			}
			if v2.ID == v1.ID || v2.FlowID != v1.FlowID {
				t.Errorf("changed version = %+v, want a new version of flow %s", v2, v1.FlowID)
			}
			requireFlowVersion(t, v2, r, 2, false)

			old, err := s.GetFlowVersion(ctx, v1.ID)
			requireNoError(t, err, "GetFlowVersion(v1)")
			if !old.Archived {
				t.Errorf("the previous version is not archived")
			}
			f, err := s.GetFlow(ctx, "etl", "nightly")
			requireNoError(t, err, "GetFlow")
			if f.LatestVersion != 2 {
				t.Errorf("latest version = %d, want 2", f.LatestVersion)
			}
			if f.UpdatedAt.Before(f.CreatedAt) {
				t.Errorf("flow updated_at %v is before created_at %v", f.UpdatedAt, f.CreatedAt)
			}
		})
	}

	t.Run("VersionsNewestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		// Going back to the first spec is a new version too: only the
		// newest version is compared.
		var ids []string
		for _, hash := range []string{"a", "b", "a", "c"} {
			ids = append(ids, register(t, s, registration("etl", "nightly", hash)).ID)
		}
		f, err := s.GetFlow(ctx, "etl", "nightly")
		requireNoError(t, err, "GetFlow")
		vs, err := s.ListFlowVersions(ctx, f.ID)
		requireNoError(t, err, "ListFlowVersions")
		if len(vs) != 4 {
			t.Fatalf("ListFlowVersions = %d versions, want 4", len(vs))
		}
		for i, v := range vs {
			want := 4 - i
			if v.Version != want || v.ID != ids[want-1] {
				t.Errorf("versions[%d] = version %d %s, want version %d %s", i, v.Version, v.ID, want, ids[want-1])
			}
			if v.Archived != (i != 0) {
				t.Errorf("version %d archived = %v, want %v", v.Version, v.Archived, i != 0)
			}
		}
		if f.LatestVersion != 4 {
			t.Errorf("latest version = %d, want 4", f.LatestVersion)
		}
	})

	t.Run("SameFlowNameInTwoProjects", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "one")
		createProject(t, s, "two")
		v1, c1, err1 := s.RegisterFlow(t.Context(), registration("one", "nightly", "h"))
		v2, c2, err2 := s.RegisterFlow(t.Context(), registration("two", "nightly", "h"))
		requireNoError(t, err1, "RegisterFlow one")
		requireNoError(t, err2, "RegisterFlow two")
		if !c1 || !c2 || v1.FlowID == v2.FlowID || v1.Version != 1 || v2.Version != 1 {
			t.Errorf("flows of one name in two projects: %+v (created %v) and %+v (created %v), want two first versions of two flows",
				v1, c1, v2, c2)
		}
	})

	t.Run("ConcurrentIdenticalRegistrations", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		const n = 8
		var (
			wg      sync.WaitGroup
			ids     [n]string
			created [n]bool
			errs    [n]error
		)
		for i := range n {
			wg.Go(func() {
				v, c, err := s.RegisterFlow(t.Context(), registration("etl", "nightly", "hash-1"))
				ids[i], created[i], errs[i] = v.ID, c, err
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			requireNoError(t, errs[i], "concurrent RegisterFlow %d", i)
			if created[i] {
				winners++
			}
			if ids[i] != ids[0] {
				t.Errorf("concurrent identical registrations returned versions %s and %s, want one", ids[0], ids[i])
			}
		}
		if winners != 1 {
			t.Errorf("%d of %d identical registrations created a version, want 1", winners, n)
		}
	})

	t.Run("UnknownProjectIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, _, err := s.RegisterFlow(t.Context(), registration("no-such-project", "nightly", "h"))
		requireErrorIs(t, err, reeve.ErrNotFound, "no-such-project")
	})

	t.Run("InvalidRegistration", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		for name, change := range map[string]func(r *store.Registration){
			"NoFlowName": func(r *store.Registration) { r.Flow = "" },
			"NoSpecHash": func(r *store.Registration) { r.SpecHash = "" },
		} {
			r := registration("etl", "nightly", "h")
			change(&r)
			_, _, err := s.RegisterFlow(t.Context(), r)
			if err == nil {
				t.Errorf("%s: RegisterFlow = nil error, want ErrInvalid", name)
				continue
			}
			requireErrorIs(t, err, reeve.ErrInvalid)
		}
		flows, err := s.ListFlows(t.Context(), "etl")
		requireNoError(t, err, "ListFlows")
		if len(flows) != 0 {
			t.Errorf("invalid registrations created flows %+v", flows)
		}
	})

	t.Run("GetFlowUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		_, err := s.GetFlow(t.Context(), "etl", "no-such-flow")
		requireErrorIs(t, err, reeve.ErrNotFound, "no-such-flow")
		_, err = s.GetFlow(t.Context(), "no-such-project", "nightly")
		requireErrorIs(t, err, reeve.ErrNotFound, "no-such-project")
	})

	t.Run("ListFlowsByName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		createProject(t, s, "other")
		flows, err := s.ListFlows(ctx, "etl")
		requireNoError(t, err, "ListFlows of a project without flows")
		if len(flows) != 0 {
			t.Fatalf("ListFlows of a project without flows = %+v", flows)
		}
		for _, name := range []string{"charlie", "alpha", "bravo"} {
			register(t, s, registration("etl", name, "h"))
		}
		register(t, s, registration("other", "delta", "h"))
		flows, err = s.ListFlows(ctx, "etl")
		requireNoError(t, err, "ListFlows")
		var names []string
		for _, f := range flows {
			names = append(names, f.Name)
		}
		if want := []string{"alpha", "bravo", "charlie"}; !slices.Equal(names, want) {
			t.Errorf("ListFlows names = %q, want %q", names, want)
		}
		_, err = s.ListFlows(ctx, "no-such-project")
		requireErrorIs(t, err, reeve.ErrNotFound, "no-such-project")
	})

	t.Run("GetFlowVersionUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000000"
		_, err := s.GetFlowVersion(t.Context(), id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("ListFlowVersionsUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000001"
		_, err := s.ListFlowVersions(t.Context(), id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})
}

// requireFlowVersion fails unless v records r as version n.
func requireFlowVersion(t *testing.T, v store.FlowVersion, r store.Registration, n int, archived bool) {
	t.Helper()
	if v.ID == "" || v.FlowID == "" {
		t.Errorf("flow version %+v has no ID or flow ID", v)
	}
	if v.Version != n || v.Archived != archived || v.SpecHash != r.SpecHash {
		t.Errorf("flow version = version %d, archived %v, hash %q; want version %d, archived %v, hash %q",
			v.Version, v.Archived, v.SpecHash, n, archived, r.SpecHash)
	}
	requireJSON(t, "spec", v.Spec, r.Spec)
	if v.Storage != r.Storage {
		t.Errorf("storage = %+v, want %+v", v.Storage, r.Storage)
	}
	requireLabels(t, "labels", v.Labels, r.Labels)
	got, _ := json.Marshal(v.RunConfig)
	want, _ := json.Marshal(r.RunConfig)
	requireJSON(t, "run config", got, want)
}
