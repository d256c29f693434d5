package ui

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/state"
)

// The dashboard: /ui/dashboard.

// dashboardWindows are the dashboard's time windows, by their URL value.
var dashboardWindows = []struct {
	Value string
	Label string
	D     time.Duration
}{
	{"1h", "last hour", time.Hour},
	{"24h", "last 24 hours", 24 * time.Hour},
	{"7d", "last 7 days", 7 * 24 * time.Hour},
}

// defaultDashboardWindow is the window of a dashboard URL that names none.
const defaultDashboardWindow = "24h"

// Bounds of the dashboard's reads.
const (
	maxFailureScan  = 500 // failed runs read to find the failing flows
	maxFailingFlows = 20  // failing flows shown (and counted)
	nextRunsOnBoard = 10  // next scheduled runs shown
)

// failureKinds are the states a failing flow's runs end in.
var failureKinds = []state.Kind{state.Failed, state.TimedOut, state.TriggerFailed}

type dashboardData struct {
	Projects []api.Project
	Project  string
	Window   string
	Windows  []windowOption
	Since    time.Time // the window's start

	Counts   []stateCount
	Total    int64
	TotalURL string

	Failing     []failingFlow
	FailingMore bool // more failed runs than were read to find the flows
	FailingCut  bool // more failing flows than are shown

	Late     []strandedRow
	LateMore bool

	Next []nextRun

	Agents    int
	Healthy   int
	Unhealthy int
	Offline   string
}

type windowOption struct {
	Value, Label string
	Selected     bool
}

type stateCount struct {
	Kind  state.Kind
	Count int64
	URL   string // the runs list filtered the same way
}

type failingFlow struct {
	Flow     api.Flow
	Project  string
	Failures int64
	Last     api.FlowRun // the newest failure (by when it failed)
	URL      string      // the runs list: this flow's failures in the window
}

type nextRun struct {
	At       time.Time
	Schedule api.Schedule
	Flow     string
	FlowID   string
	Zone     string // the schedule's zone, e.g. "Europe/Paris", "UTC"
	InZone   string // At in the schedule's zone, e.g. "2026-11-27 06:00 CET"
	Every    string // an interval schedule's interval, "15m0s"
}

// dashboardPage shows, for a window (1h, 24h, 7d) and a project (or
// all): the runs' state counts, the failing flows, the late runs with why
// they wait, the next scheduled runs and the agents' health. Its reads
// are bounded: the projects and their flows, the counts, one page of
// failures and a count per failing flow shown, one page of Scheduled
// runs, the schedules and the agents.
func (u *UI) dashboardPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	v.Title = "Dashboard"
	q := r.URL.Query()
	d := &dashboardData{Project: q.Get("project"), Window: cmp.Or(q.Get("window"), defaultDashboardWindow), Offline: u.offline.String()}
	v.Data = d
	var span time.Duration
	for _, w := range dashboardWindows {
		d.Windows = append(d.Windows, windowOption{Value: w.Value, Label: w.Label, Selected: w.Value == d.Window})
		if w.Value == d.Window {
			span = w.D
		}
	}
	cat, err := readCatalog(ctx, s, d.Project)
	if err != nil {
		return "", err
	}
	d.Projects = cat.projects
	if span == 0 {
		return "", errs.Errorf(errs.CodeInvalid, "window %q is not one of 1h, 24h, 7d", d.Window)
	}
	now := time.Now()
	d.Since = now.Add(-span).Truncate(time.Second)

	// State counts, each linking to the runs list filtered the same way.
	c, err := s.api.FlowRunCounts(ctx, client.FlowRunFilter{Project: d.Project, CreatedAfter: d.Since})
	if err != nil {
		return "", err
	}
	counts := c.Counts
	d.Total = c.Total
	d.TotalURL = d.runsURL(nil, "", "")
	for _, k := range state.Kinds() {
		if n := counts[k]; n > 0 {
			d.Counts = append(d.Counts, stateCount{Kind: k, Count: n, URL: d.runsURL([]state.Kind{k}, "", "")})
		}
	}

	// Failing flows: the flows of the newest failures of the window, the
	// flow with the newest failure first, each with its failures counted
	// by the store (one call per flow shown).
	fails, err := s.api.FlowRuns(ctx, client.FlowRunFilter{Project: d.Project, States: failureKinds, CreatedAfter: d.Since, Limit: maxFailureScan})
	if err != nil {
		return "", err
	}
	d.FailingMore = fails.NextCursor != ""
	byFlow := map[string]int{} // flow ID → index in d.Failing
	for _, run := range fails.FlowRuns {
		i, ok := byFlow[run.FlowID]
		if !ok {
			f := cat.flow(ctx, s, run.FlowID)
			ff := failingFlow{Flow: f, Project: cat.projectName[run.ProjectID], Last: run}
			ff.URL = d.runsURL(failureKinds, f.Name, ff.Project)
			byFlow[run.FlowID] = len(d.Failing)
			d.Failing = append(d.Failing, ff)
			continue
		}
		// The newest failure by when the run failed (the list is by
		// creation, and a run created earlier may have failed later).
		if run.State.Time.After(d.Failing[i].Last.State.Time) {
			d.Failing[i].Last = run
		}
	}
	slices.SortStableFunc(d.Failing, func(a, b failingFlow) int { return b.Last.State.Time.Compare(a.Last.State.Time) })
	if len(d.Failing) > maxFailingFlows {
		d.Failing, d.FailingCut = d.Failing[:maxFailingFlows], true
	}
	for i := range d.Failing {
		fc, err := s.api.FlowRunCounts(ctx, client.FlowRunFilter{FlowID: d.Failing[i].Flow.ID, States: failureKinds, CreatedAfter: d.Since})
		if err != nil {
			return "", err
		}
		d.Failing[i].Failures = fc.Total
	}

	// Agents' health, and the late runs with why they wait.
	agents, err := s.api.Agents(ctx)
	if err != nil {
		return "", err
	}
	d.Agents = len(agents)
	for _, a := range agents {
		if u.healthy(a.LastSeenAt, now) {
			d.Healthy++
		}
	}
	d.Unhealthy = d.Agents - d.Healthy
	late, err := u.lateRuns(ctx, s, agents, lateQuery{now: now, project: d.Project, overdue: scheduler.DefaultLateAfter, names: cat.names()})
	if err != nil {
		return "", err
	}
	d.Late, d.LateMore = late.rows, late.more

	// The next scheduled runs, from the schedules' own next run times.
	scheds, err := s.api.Schedules(ctx, "")
	if err != nil {
		return "", err
	}
	for _, sc := range scheds {
		if sc.Paused || (d.Project != "" && cat.projectName[sc.ProjectID] != d.Project) {
			continue
		}
		loc, zone := scheduleZone(sc)
		for _, at := range sc.NextRuns {
			d.Next = append(d.Next, nextRun{At: at, Schedule: sc, Flow: cat.flow(ctx, s, sc.FlowID).Name, FlowID: sc.FlowID, Zone: zone,
				InZone: at.In(loc).Format("2006-01-02 15:04 MST"), Every: time.Duration(sc.Interval).String()})
		}
	}
	slices.SortStableFunc(d.Next, func(a, b nextRun) int { return a.At.Compare(b.At) })
	if len(d.Next) > nextRunsOnBoard {
		d.Next = d.Next[:nextRunsOnBoard]
	}
	return "dashboard", nil
}

// runsURL is the runs list filtered by the dashboard's window and
// project (or project, when given) and by kinds and flow.
func (d *dashboardData) runsURL(kinds []state.Kind, flow, project string) string {
	q := url.Values{}
	for _, k := range kinds {
		q.Add("state", k.String())
	}
	if flow != "" {
		q.Set("flow", flow)
	}
	if p := cmp.Or(project, d.Project); p != "" {
		q.Set("project", p)
	}
	q.Set("after", d.Since.UTC().Format(time.RFC3339))
	return "/ui/runs?" + q.Encode()
}

// scheduleZone is the zone a schedule fires in, and its name: a cron
// schedule's time zone (UTC when it names none); an interval schedule
// fires in no zone, and is shown in UTC.
func scheduleZone(sc api.Schedule) (*time.Location, string) {
	if sc.Cron != "" && sc.Timezone != "" {
		if loc, err := time.LoadLocation(sc.Timezone); err == nil {
			return loc, sc.Timezone
		}
	}
	return time.UTC, "UTC"
}

// catalog is the projects and the flows a page needs, read once: the
// projects in one call, then the flows of the project asked for, or of
// every project.
type catalog struct {
	projects    []api.Project
	projectName map[string]string   // project ID → name
	flows       map[string]api.Flow // flow ID → flow
}

// readCatalog reads the projects and the flows of project ("" for every
// project). A project that does not exist is a 404 that says which ones
// do.
func readCatalog(ctx context.Context, s *session, project string) (*catalog, error) {
	projects, err := s.api.Projects(ctx)
	if err != nil {
		return nil, err
	}
	c := &catalog{projects: projects, projectName: map[string]string{}, flows: map[string]api.Flow{}}
	var names []string
	for _, p := range projects {
		c.projectName[p.ID] = p.Name
		names = append(names, p.Name)
	}
	if project != "" && !slices.Contains(names, project) {
		return c, errs.Errorf(errs.CodeNotFound, "there is no project named %q: the projects are %s", project, strings.Join(names, ", "))
	}
	for _, p := range projects {
		if project != "" && p.Name != project {
			continue
		}
		flows, err := s.api.Flows(ctx, p.Name, "")
		if err != nil {
			return nil, err
		}
		for _, f := range flows {
			c.flows[f.ID] = f
		}
	}
	return c, nil
}

// flow returns a flow by ID, read from the API if the catalog lacks it
// (a flow registered since); one whose read fails is named by its ID.
func (c *catalog) flow(ctx context.Context, s *session, id string) api.Flow {
	if f, ok := c.flows[id]; ok {
		return f
	}
	f := api.Flow{ID: id, Name: id}
	if fd, err := s.api.Flow(ctx, id); err == nil {
		f = fd.Flow
	}
	c.flows[id] = f
	return f
}

// names maps the catalog's flow IDs to their names.
func (c *catalog) names() map[string]string {
	m := make(map[string]string, len(c.flows))
	for id, f := range c.flows {
		m[id] = f.Name
	}
	return m
}
