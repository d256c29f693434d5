package ui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// maxStrandedScan is how many Scheduled runs the agents page reads to
// find those no agent can take.
const maxStrandedScan = 500

type agentsData struct {
	Agents   []agentRow
	Offline  string // the offline window, e.g. "1m30s"
	Stranded []strandedRow
	Scanned  bool // true when more Scheduled runs exist than were read
	Limit    int
}

type agentRow struct {
	Agent    api.Agent
	Healthy  bool
	Ago      string // "12 s ago"
	InFlight int
	More     bool // InFlight is a lower bound (a page's worth)
}

type strandedRow struct {
	Run     api.FlowRun
	Flow    string
	Message string
}

// inFlightKinds are the states of a run an agent holds.
var inFlightKinds = []state.Kind{state.Submitted, state.Running, state.Cancelling}

// agentsPage lists the agents with their health and runs in flight, and
// the due runs that no online agent can take. An agent is healthy when it
// was seen (a heartbeat or a claim) within scheduler.AgentOfflineAfter,
// the window the server's monitor uses.
func (u *UI) agentsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	v.Title = "Agents"
	agents, err := s.api.Agents(ctx)
	if err != nil {
		return "", err
	}
	slices.SortFunc(agents, func(a, b api.Agent) int { return strings.Compare(a.Name, b.Name) })
	now := time.Now()
	d := agentsData{Offline: scheduler.AgentOfflineAfter.String(), Limit: maxStrandedScan}
	v.Data = &d
	for _, a := range agents {
		row := agentRow{Agent: a, Healthy: !a.LastSeenAt.IsZero() && now.Sub(a.LastSeenAt) <= scheduler.AgentOfflineAfter}
		if !a.LastSeenAt.IsZero() {
			row.Ago = ago(now.Sub(a.LastSeenAt))
		}
		page, err := s.api.FlowRuns(ctx, client.FlowRunFilter{AgentID: a.ID, States: inFlightKinds, Limit: 1000})
		if err != nil {
			return "", err
		}
		row.InFlight = len(page.FlowRuns)
		row.More = page.NextCursor != ""
		d.Agents = append(d.Agents, row)
	}
	// The runs waiting on labels no agent has: Scheduled and due, and no
	// online agent can take them (the monitor's own judgement,
	// scheduler.Stranded); a late run's message already says why.
	sagents := make([]store.Agent, len(agents))
	for i, a := range agents {
		sagents[i] = store.Agent{ID: a.ID, Name: a.Name, Labels: a.Labels, StorageKinds: a.StorageKinds, LastSeenAt: a.LastSeenAt}
	}
	kinds := map[string]string{} // flow version ID → storage kind
	names := map[string]string{} // flow ID → name
	page, err := s.api.FlowRuns(ctx, client.FlowRunFilter{States: []state.Kind{state.Scheduled}, Limit: maxStrandedScan})
	if err != nil {
		return "", err
	}
	d.Scanned = page.NextCursor != ""
	for _, run := range page.FlowRuns {
		if run.ScheduledAt.After(now) {
			continue
		}
		kind, ok := kinds[run.FlowVersionID]
		if !ok {
			if fv, err := s.api.FlowVersion(ctx, run.FlowVersionID); err == nil {
				kind = fv.Storage.Kind
			}
			kinds[run.FlowVersionID] = kind
		}
		why := scheduler.Stranded(sagents, run.Labels, kind, now)
		late := strings.HasPrefix(run.State.Message, "late: ")
		if why == "" && !late {
			continue
		}
		msg := run.State.Message
		if !late {
			msg = why
		}
		name, ok := names[run.FlowID]
		if !ok {
			name = run.FlowID
			if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
				name = fd.Flow.Name
			}
			names[run.FlowID] = name
		}
		d.Stranded = append(d.Stranded, strandedRow{Run: run, Flow: name, Message: msg})
	}
	return "agents", nil
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
