package ui

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// maxStrandedScan is how many Scheduled runs the agents page and the
// dashboard read to find the late ones and those no agent can take.
const maxStrandedScan = 500

type agentsData struct {
	Agents   []agentRow
	Offline  string // the offline window, e.g. "1m30s"
	PollMS   int64  // how often the page's script refreshes the tables
	Stranded []strandedRow
	Scanned  bool // true when more Scheduled runs exist than were read
	Limit    int
}

type agentRow struct {
	Agent    api.Agent
	Healthy  bool
	Ago      string // "12 s ago"
	InFlight int64
}

type strandedRow struct {
	Run     api.FlowRun
	Flow    string
	Message string
}

// inFlightKinds are the states of a run an agent holds.
var inFlightKinds = []state.Kind{state.Submitted, state.Running, state.Cancelling}

// healthy reports whether an agent seen last at seen counts as online at
// now: seen (a heartbeat or a claim) within the UI's offline window.
func (u *UI) healthy(seen, now time.Time) bool {
	return !seen.IsZero() && now.Sub(seen) <= u.offline
}

// agentsPage lists the agents with their health and runs in flight, and
// the due runs that no online agent can take. An agent is healthy when it
// was seen within the UI's offline window (Config.AgentOfflineAfter,
// scheduler.AgentOfflineAfter unless a test changes it), the window the
// server's monitor uses. The page's script refreshes both tables from
// agentsLive while the tab is visible.
func (u *UI) agentsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	v.Title = "Agents"
	d, err := u.agentsData(r.Context(), s)
	if err != nil {
		return "", err
	}
	v.Data = d
	return "agents", nil
}

// agentsLive serves the agents page's two table bodies alone, for the
// page's script to merge in place. Signed out it answers 401, and the
// script reloads the page (which leads to the sign-in form).
func (u *UI) agentsLive(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	d, err := u.agentsData(r.Context(), s)
	if err != nil {
		if errs.CodeOf(err) == errs.CodeUnauthorized { // revoked or expired
			clearSession(w, r)
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		status := statusOf(err)
		if status >= 500 {
			u.log.ErrorContext(r.Context(), "ui agents refresh failed", "err", err)
		}
		http.Error(w, err.Error(), status)
		return
	}
	v := view{SignedIn: true, Data: d, Prefs: readPrefs(r)}
	v.T = v.Prefs.formatter()
	var buf strings.Builder
	if err := u.pages["agents"].ExecuteTemplate(&buf, "agents-live", v); err != nil {
		u.log.ErrorContext(r.Context(), "ui render failed", "page", "agents-live", "err", err)
		http.Error(w, "the agents could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(buf.String()))
}

// agentsData reads the agents, their runs in flight (one count per
// agent) and the stranded runs.
func (u *UI) agentsData(ctx context.Context, s *session) (*agentsData, error) {
	agents, err := s.api.Agents(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(agents, func(a, b api.Agent) int { return strings.Compare(a.Name, b.Name) })
	now := time.Now()
	d := &agentsData{Offline: u.offline.String(), PollMS: agentsPoll(u.offline).Milliseconds(), Limit: maxStrandedScan}
	for _, a := range agents {
		row := agentRow{Agent: a, Healthy: u.healthy(a.LastSeenAt, now)}
		if !a.LastSeenAt.IsZero() {
			row.Ago = ago(now.Sub(a.LastSeenAt))
		}
		c, err := s.api.FlowRunCounts(ctx, client.FlowRunFilter{AgentID: a.ID, States: inFlightKinds})
		if err != nil {
			return nil, err
		}
		row.InFlight = c.Total
		d.Agents = append(d.Agents, row)
	}
	late, err := u.lateRuns(ctx, s, agents, lateQuery{now: now})
	if err != nil {
		return nil, err
	}
	d.Stranded, d.Scanned = late.rows, late.more
	return d, nil
}

// agentsPoll is how often the agents page refreshes: a quarter of the
// offline window, between 1 and 10 seconds, so a lost agent shows soon
// after it crosses the window.
func agentsPoll(offline time.Duration) time.Duration {
	return min(max(offline/4, time.Second), 10*time.Second)
}

// lateQuery says which due Scheduled runs lateRuns returns.
type lateQuery struct {
	now     time.Time
	project string // "" for every project
	// overdue, when not zero, also returns the runs due for longer than
	// it, even when an agent could take them (all agents are busy);
	// otherwise only runs with the monitor's "late: " message or that no
	// online agent can take.
	overdue time.Duration
	names   map[string]string // flow ID → name, known already (may be nil)
}

type lateResult struct {
	rows []strandedRow
	more bool // more Scheduled runs exist than were read
}

// lateRuns finds the due Scheduled runs that wait, each with why: the
// monitor's own message on a late run ("late: ..."), else its judgement
// (scheduler.Stranded) over the agents the UI counts as online. It reads
// the newest maxStrandedScan Scheduled runs due by q.now, then one flow version per
// distinct version and one flow per distinct flow it does not know.
func (u *UI) lateRuns(ctx context.Context, s *session, agents []api.Agent, q lateQuery) (lateResult, error) {
	var out lateResult
	// Stranded counts an agent online by the scheduler's own window; give
	// it the UI's judgement instead (an agent online is "seen now").
	sagents := make([]store.Agent, len(agents))
	for i, a := range agents {
		sagents[i] = store.Agent{ID: a.ID, Name: a.Name, Labels: a.Labels, StorageKinds: a.StorageKinds}
		if u.healthy(a.LastSeenAt, q.now) {
			sagents[i].LastSeenAt = q.now
		}
	}
	// Only the runs due now: schedules create their future runs ahead,
	// and those, newer than an overdue run, would fill the page.
	page, err := s.api.FlowRuns(ctx, client.FlowRunFilter{Project: q.project, States: []state.Kind{state.Scheduled},
		ScheduledBefore: q.now, Limit: maxStrandedScan})
	if err != nil {
		return out, err
	}
	out.more = page.NextCursor != ""
	kinds := map[string]string{} // flow version ID → storage kind
	names := map[string]string{}
	for k, v := range q.names {
		names[k] = v
	}
	for _, run := range page.FlowRuns {
		if run.ScheduledAt.After(q.now) {
			continue
		}
		kind, ok := kinds[run.FlowVersionID]
		if !ok {
			if fv, err := s.api.FlowVersion(ctx, run.FlowVersionID); err == nil {
				kind = fv.Storage.Kind
			}
			kinds[run.FlowVersionID] = kind
		}
		why := scheduler.Stranded(sagents, run.Labels, kind, q.now)
		late := strings.HasPrefix(run.State.Message, "late: ")
		overdue := q.overdue > 0 && q.now.Sub(run.ScheduledAt) > q.overdue
		if why == "" && !late && !overdue {
			continue
		}
		msg := run.State.Message
		switch {
		case late:
		case why != "":
			msg = why
		default:
			msg = "waiting for a free agent: every agent that can run it is busy"
		}
		name, ok := names[run.FlowID]
		if !ok {
			name = run.FlowID
			if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
				name = fd.Flow.Name
			}
			names[run.FlowID] = name
		}
		out.rows = append(out.rows, strandedRow{Run: run, Flow: name, Message: msg})
	}
	return out, nil
}

// ago says how long ago something was, in whole seconds up to two minutes,
// then in minutes, hours or days: "12 s ago", "5 min ago".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}
