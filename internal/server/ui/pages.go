package ui

import (
	"cmp"
	"encoding/json"
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

// Page sizes of the runs list.
const (
	defaultRunPage = 50
	maxRunPage     = 200
)

// maxLogLines is how many log lines of a run the logs tab reads.
const maxLogLines = 100_000

// ---- preferences

type prefsData struct {
	Themes []string
	Zones  []string
}

func (u *UI) preferencesPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	v.Title = "Preferences"
	if r.URL.Query().Get("saved") == "1" {
		v.Notice = "Preferences saved."
	}
	v.Data = prefsData{Themes: themes, Zones: []string{"local", "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"}}
	return "preferences", nil
}

func (u *UI) savePreferences(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	f := r.PostForm
	p := readPrefs(r)
	theme, zone, clock := f.Get("theme"), strings.TrimSpace(f.Get("tz")), f.Get("clock")
	if other := strings.TrimSpace(f.Get("tz_other")); other != "" {
		zone = other
	}
	switch {
	case !contains(themes, theme):
		return "", errs.Errorf(errs.CodeInvalid, "theme %q is not one of %s", theme, strings.Join(themes, ", "))
	case zone == "" || !validZone(zone):
		return "", errs.Errorf(errs.CodeInvalid, "time zone %q is not local, UTC or an IANA zone name such as Europe/Paris", zone)
	case clock != "12" && clock != "24":
		return "", errs.Errorf(errs.CodeInvalid, "clock %q is not 12 or 24", clock)
	}
	p.Theme, p.Zone, p.Clock = theme, zone, clock
	if b := strings.TrimSpace(f.Get("browser_tz")); b != "" && validZone(b) && b != "local" {
		p.Browser = b
	}
	http.SetCookie(w, &http.Cookie{Name: prefsCookie, Value: p.encode(), Path: "/ui", MaxAge: 400 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)})
	http.Redirect(w, r, "/ui/preferences?saved=1", http.StatusSeeOther)
	return "", nil
}

// ---- runs list

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

type runData struct {
	Run      api.FlowRun
	Flow     string
	Agent    string
	Params   []param
	Tasks    []api.TaskRun
	History  []state.State
	Duration string
	Tab      string
	CanAct   bool // the user's role may cancel
	Finished bool
	Logs     *logsData
}

type param struct{ Name, Value string }

type logsData struct {
	Q, Level  string
	Levels    []string
	Lines     []logLine
	Total     int
	Truncated bool
	Tasks     map[string]string // task run ID → key
}

type logLine struct {
	N     int
	Line  api.LogLine
	Parts []part // the message, split around the matches of q
	Task  string
}

type part struct {
	Text  string
	Match bool
}

var logLevels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

func (u *UI) runPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	return u.showRun(r, s, v, r.PathValue("id"), r.URL.Query())
}

func (u *UI) showRun(r *http.Request, s *session, v *view, id string, q url.Values) (string, error) {
	ctx := r.Context()
	det, err := s.api.FlowRun(ctx, id)
	if err != nil {
		return "", err
	}
	run := det.FlowRun
	d := runData{Run: run, Tasks: sortTasks(det.TaskRuns), History: det.History, Tab: q.Get("tab"), Finished: run.State.Kind.Finished()}
	switch d.Tab {
	case "", "tasks":
		d.Tab = "tasks"
	case "logs", "details":
	default:
		return "", errs.Errorf(errs.CodeInvalid, "tab %q is not tasks, logs or details", d.Tab)
	}
	v.Title = "Run " + run.ID
	v.Data = &d
	d.Flow = run.FlowID
	if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
		d.Flow = fd.Flow.Name
	}
	if run.AgentID != "" {
		d.Agent = run.AgentID
		if agents, err := s.api.Agents(ctx); err == nil {
			for _, a := range agents {
				if a.ID == run.AgentID {
					d.Agent = a.Name
				}
			}
		}
	}
	if len(run.Params) > 0 {
		var m map[string]json.RawMessage
		if json.Unmarshal(run.Params, &m) == nil {
			for k, raw := range m {
				d.Params = append(d.Params, param{k, string(raw)})
			}
			slices.SortFunc(d.Params, func(a, b param) int { return strings.Compare(a.Name, b.Name) })
		}
	}
	d.Duration = runDuration(run, det.History, time.Now())
	// Only the roles that may write (admin, developer) may list secrets,
	// exactly the roles that may cancel: the API has no "who am I" route.
	if !d.Finished {
		_, err := s.api.Secrets(ctx, "")
		d.CanAct = err == nil
	}
	if d.Tab == "logs" {
		ld, err := readLogs(r, s, id, q, det.TaskRuns)
		if err != nil {
			return "", err
		}
		d.Logs = ld
	}
	return "run", nil
}

// readLogs reads a run's log lines and keeps those that match the
// search (q, case-insensitive, in the message and attributes) and the
// level (the least level shown). Lines are numbered over the whole log,
// so a line's number and anchor do not change with the filters.
func readLogs(r *http.Request, s *session, id string, q url.Values, tasks []api.TaskRun) (*logsData, error) {
	d := &logsData{Q: q.Get("q"), Level: strings.ToUpper(q.Get("level")), Levels: logLevels, Tasks: map[string]string{}}
	minLevel := 0
	if d.Level != "" {
		minLevel = slices.Index(logLevels, d.Level)
		if minLevel < 0 {
			return nil, errs.Errorf(errs.CodeInvalid, "level %q is not one of %s", q.Get("level"), strings.Join(logLevels, ", "))
		}
	}
	for _, t := range tasks {
		d.Tasks[t.ID] = t.Key
	}
	needle := strings.ToLower(d.Q)
	var after int64
	n := 0
	for {
		page, err := s.api.Logs(r.Context(), id, client.LogQuery{After: after, Limit: 10_000})
		if err != nil {
			return nil, err
		}
		for _, l := range page.Logs {
			n++
			if n > maxLogLines {
				d.Truncated = true
				break
			}
			if lvl := slices.Index(logLevels, strings.ToUpper(l.Level)); lvl >= 0 && lvl < minLevel {
				continue
			}
			if needle != "" && !strings.Contains(strings.ToLower(l.Message), needle) && !strings.Contains(strings.ToLower(string(l.Attrs)), needle) {
				continue
			}
			d.Lines = append(d.Lines, logLine{N: n, Line: l, Parts: split(l.Message, d.Q), Task: d.Tasks[l.TaskRunID]})
		}
		if d.Truncated || len(page.Logs) == 0 || page.NextAfter <= after {
			break
		}
		after = page.NextAfter
	}
	d.Total = min(n, maxLogLines)
	return d, nil
}

// split cuts s around the case-insensitive matches of q.
func split(s, q string) []part {
	if q == "" {
		return []part{{Text: s}}
	}
	var out []part
	ls, lq := strings.ToLower(s), strings.ToLower(q)
	if len(ls) != len(s) { // a case change changed the length: no highlight
		return []part{{Text: s}}
	}
	for {
		i := strings.Index(ls, lq)
		if i < 0 {
			break
		}
		if i > 0 {
			out = append(out, part{Text: s[:i]})
		}
		out = append(out, part{Text: s[i : i+len(q)], Match: true})
		s, ls = s[i+len(q):], ls[i+len(q):]
	}
	if s != "" {
		out = append(out, part{Text: s})
	}
	return out
}

// cancelRun cancels a run; the API's refusal (a role that may not, a run
// already finished) is shown on the run's page.
func (u *UI) cancelRun(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	id := r.PathValue("id")
	if _, err := s.api.CancelFlowRun(r.Context(), id); err != nil {
		code := errs.CodeOf(err)
		if code != errs.CodeForbidden && code != errs.CodeConflict && code != errs.CodeInvalid {
			return "", err
		}
		name, perr := u.showRun(r, s, v, id, url.Values{})
		if perr != nil {
			return "", err
		}
		v.Status = statusOf(err)
		if code == errs.CodeForbidden {
			v.Error = "You may not cancel this run: " + err.Error()
		} else {
			v.Error = "The run was not cancelled: " + err.Error()
		}
		return name, nil
	}
	http.Redirect(w, r, "/ui/runs/"+url.PathEscape(id), http.StatusSeeOther)
	return "", nil
}

// sortTasks returns the task runs with mapped children in index order
// after their parent (the API orders keys as text: "t[10]" before "t[2]").
func sortTasks(trs []api.TaskRun) []api.TaskRun {
	out := slices.Clone(trs)
	slices.SortStableFunc(out, func(a, b api.TaskRun) int {
		ab, bb := taskBase(a.Key), taskBase(b.Key)
		return cmp.Or(cmp.Compare(ab, bb), cmp.Compare(len(a.Key), len(b.Key)) /* the parent first */, cmp.Compare(a.MapIndex, b.MapIndex))
	})
	return out
}

// taskBase is a task run's key without its map index: "t" for "t[3]".
func taskBase(key string) string {
	base, _, _ := strings.Cut(key, "[")
	return base
}
