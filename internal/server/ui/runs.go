package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// The runs list: /ui/runs.

// Page sizes of the runs list.
const (
	defaultRunPage = 50
	maxRunPage     = 200
)

type runsData struct {
	Projects []api.Project
	Flows    []api.Flow
	Project  string
	Flow     string
	States   []string // the state values selected, "!X" for excluded
	Kinds    []state.Kind
	Rows     []runRow
	Limit    int
	Page     int
	Next     string // URLs, empty when there is no such page
	Prev     string
	Filtered bool
}

// Selected reports whether a state option is selected.
func (d runsData) Selected(value string) bool { return contains(d.States, value) }

type runRow struct {
	Run      api.FlowRun
	Flow     string
	Duration string
}

// runFilter parses the runs list's URL: state (repeatable, "!Kind"
// excludes a kind), flow (a name), project (a name), limit, cursor and
// prev (the cursors of the pages before, for the Previous link).
func runFilter(q url.Values) (client.FlowRunFilter, []string, error) {
	var f client.FlowRunFilter
	f.Project = q.Get("project")
	var in, out []state.Kind
	var values []string
	for _, raw := range q["state"] {
		for v := range strings.SplitSeq(raw, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			name, excluded := strings.CutPrefix(v, "!")
			k, err := state.ParseKind(name)
			if err != nil {
				return f, nil, errs.Errorf(errs.CodeInvalid, "state %q is not a state: use one of %s, or !State to leave one out", v, kindList())
			}
			values = append(values, v)
			if excluded {
				out = append(out, k)
			} else {
				in = append(in, k)
			}
		}
	}
	// The API takes the kinds to include; an exclusion is every other kind.
	if len(out) > 0 && len(in) == 0 {
		in = state.Kinds()
	}
	for _, k := range in {
		if !slices.Contains(out, k) && !slices.Contains(f.States, k) {
			f.States = append(f.States, k)
		}
	}
	if len(values) > 0 && len(f.States) == 0 {
		return f, values, errs.Errorf(errs.CodeInvalid, "the state filter leaves out every state: select fewer exclusions")
	}
	f.Limit = defaultRunPage
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxRunPage {
			return f, values, errs.Errorf(errs.CodeInvalid, "limit %q is not a number from 1 to %d", l, maxRunPage)
		}
		f.Limit = n
	}
	f.Cursor = q.Get("cursor")
	return f, values, nil
}

func kindList() string {
	names := make([]string, 0, len(state.Kinds()))
	for _, k := range state.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

func (u *UI) runsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	v.Title = "Runs"
	q := r.URL.Query()
	d := runsData{Project: q.Get("project"), Flow: q.Get("flow"), Kinds: state.Kinds()}
	f, values, ferr := runFilter(q)
	d.States = values
	d.Limit = cmp.Or(f.Limit, defaultRunPage)
	d.Page = len(q["prev"]) + 1
	d.Filtered = len(values) > 0 || d.Project != "" || d.Flow != ""
	v.Data = &d
	var err error
	if d.Projects, err = s.api.Projects(ctx); err != nil {
		return "", err
	}
	if d.Flows, err = s.api.Flows(ctx, d.Project, ""); err != nil {
		return "", err
	}
	if ferr != nil {
		v.Status = statusOf(ferr)
		v.Error = ferr.Error()
		return "runs", nil
	}
	if d.Flow != "" {
		i := slices.IndexFunc(d.Flows, func(fl api.Flow) bool { return fl.Name == d.Flow })
		if i < 0 {
			v.Status = http.StatusNotFound
			v.Error = fmt.Sprintf("There is no flow named %q in project %q.", d.Flow, cmp.Or(d.Project, "default"))
			return "runs", nil
		}
		f.FlowID = d.Flows[i].ID
	}
	page, err := s.api.FlowRuns(ctx, f)
	if err != nil {
		return "", err
	}
	names := map[string]string{}
	for _, fl := range d.Flows {
		names[fl.ID] = fl.Name
	}
	now := time.Now()
	for _, run := range page.FlowRuns {
		name, ok := names[run.FlowID]
		if !ok {
			if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
				name = fd.Flow.Name
			} else {
				name = run.FlowID
			}
			names[run.FlowID] = name
		}
		d.Rows = append(d.Rows, runRow{Run: run, Flow: name, Duration: runDuration(run, nil, now)})
	}
	prev := q["prev"]
	if page.NextCursor != "" && page.NextCursor != f.Cursor {
		nq := cloneValues(q)
		nq.Set("cursor", page.NextCursor)
		nq["prev"] = append(slices.Clone(prev), f.Cursor)
		d.Next = "/ui/runs?" + nq.Encode()
	}
	if len(prev) > 0 {
		pq := cloneValues(q)
		pq.Set("cursor", prev[len(prev)-1])
		if pq.Get("cursor") == "" {
			pq.Del("cursor")
		}
		pq["prev"] = prev[:len(prev)-1]
		if len(pq["prev"]) == 0 {
			pq.Del("prev")
		}
		d.Prev = "/ui/runs?" + pq.Encode()
	}
	return "runs", nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// runDuration is how long a run ran: from its first Running state (or,
// without its history, its creation) to its end, or to now while it runs.
// A run that has not started has none.
func runDuration(run api.FlowRun, history []state.State, now time.Time) string {
	k := run.State.Kind
	if k == state.Pending || k == state.Scheduled || k == state.Submitted {
		return "—"
	}
	start := run.CreatedAt
	if run.ScheduledAt.After(start) {
		start = run.ScheduledAt
	}
	for _, h := range history {
		if h.Kind == state.Running {
			start = h.Time
			break
		}
	}
	end := now
	if k.Finished() {
		end = run.State.Time
	}
	if end.Before(start) {
		return "—"
	}
	return duration(end.Sub(start))
}

// ---- run page
