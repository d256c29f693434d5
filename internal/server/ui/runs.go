package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
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

// The runs list: /ui/runs, its filters and paging, and GET /ui/runs/new,
// which static/runs.js polls for the "N new runs — show" banner and the
// rows' states. The bulk actions over a filter are in bulk.go.

// Page sizes of the runs list.
const (
	defaultRunPage = 50
	maxRunPage     = 200
)

// Bounds of the filters' values.
const (
	maxFilterText   = 200 // bytes of the text search
	maxFilterValues = 20  // labels, parameters
)

// runRanges are the quick time ranges of the filter: "created in the
// last …", in the order the form offers them.
var runRanges = []timeRange{
	{"1h", "last hour", time.Hour},
	{"24h", "last 24 hours", 24 * time.Hour},
	{"7d", "last 7 days", 7 * 24 * time.Hour},
	{"30d", "last 30 days", 30 * 24 * time.Hour},
}

// timeRange is a quick range of the filter.
type timeRange struct {
	Value, Label string
	D            time.Duration
}

// dateInput is the layout of a datetime-local form field.
const dateInput = "2006-01-02T15:04"

// runsQuery is the runs list's URL, parsed: the filters as the user gave
// them (so the form shows them again), the page size and the paging
// cursors.
type runsQuery struct {
	Project     string
	Flow        string   // a flow name
	States      []string // "Failed" keeps a state, "!Failed" leaves it out
	Labels      []string
	Params      []string // "name=value"
	After       string   // created at or after, a datetime-local in the user's zone
	Before      string   // created before, likewise
	Range       string   // a quick range ("24h": created in the last 24 hours)
	Text        string   // run ID, name or state message
	Limit       int
	Cursor      string
	PrevCursors []string // the cursors of the pages before, for Previous (at most maxPrevCursors)
	PageNo      int      // the page's number, 1 for the first
}

// maxPrevCursors bounds the cursors a runs-list URL keeps for its
// Previous link, so the URL stays short however far one pages: beyond
// them, the First page link goes back.
const maxPrevCursors = 20

// Filtered reports whether any filter is set.
func (rq runsQuery) Filtered() bool {
	return rq.Project != "" || rq.Flow != "" || len(rq.States) > 0 || len(rq.Labels) > 0 || len(rq.Params) > 0 ||
		rq.After != "" || rq.Before != "" || rq.Range != "" || rq.Text != ""
}

// filterValues is the URL query of the filters alone (no page size, no
// cursor): the same filter on its first page, and what the bulk forms post.
func (rq runsQuery) filterValues() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("project", rq.Project)
	set("flow", rq.Flow)
	if len(rq.States) > 0 {
		q["state"] = slices.Clone(rq.States)
	}
	if len(rq.Labels) > 0 {
		q["label"] = slices.Clone(rq.Labels)
	}
	if len(rq.Params) > 0 {
		q["param"] = slices.Clone(rq.Params)
	}
	set("after", rq.After)
	set("before", rq.Before)
	set("range", rq.Range)
	set("q", rq.Text)
	return q
}

// firstPage is the URL of the first page of the same filter and size.
func (rq runsQuery) firstPage() string {
	q := rq.filterValues()
	if rq.Limit != defaultRunPage {
		q.Set("limit", strconv.Itoa(rq.Limit))
	}
	if len(q) == 0 {
		return "/ui/runs"
	}
	return "/ui/runs?" + q.Encode()
}

// Describe says what the filter selects, for the bulk confirmation:
// "state=Running, flow=etl", or "every run".
func (rq runsQuery) Describe() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("project", rq.Project)
	add("flow", rq.Flow)
	for _, s := range rq.States {
		add("state", s)
	}
	for _, l := range rq.Labels {
		add("label", l)
	}
	for _, p := range rq.Params {
		add("param", p)
	}
	for _, r := range runRanges {
		if r.Value == rq.Range {
			parts = append(parts, "created in the "+r.Label)
		}
	}
	if rq.After != "" {
		parts = append(parts, "created at or after "+strings.Replace(rq.After, "T", " ", 1))
	}
	if rq.Before != "" {
		parts = append(parts, "created before "+strings.Replace(rq.Before, "T", " ", 1))
	}
	if rq.Text != "" {
		parts = append(parts, fmt.Sprintf("text %q", rq.Text))
	}
	if len(parts) == 0 {
		return "every run"
	}
	return strings.Join(parts, ", ")
}

// runFilter parses the runs list's URL into the API's filter (all but the
// flow, which is a name the caller resolves to an ID): state (repeatable,
// "!Kind" excludes a kind), flow, project, label (repeatable, or
// comma-separated), param (repeatable "name=value"), after and before
// (datetime-local in loc, or RFC 3339), range (1h, 24h, 7d, 30d before
// now), q (text), limit, cursor and prev (the cursors of the pages before,
// for the Previous link).
func runFilter(q url.Values, loc *time.Location, now time.Time) (client.FlowRunFilter, runsQuery, error) {
	var f client.FlowRunFilter
	rq := runsQuery{Project: strings.TrimSpace(q.Get("project")), Flow: strings.TrimSpace(q.Get("flow")), Limit: defaultRunPage,
		Cursor: q.Get("cursor"), PrevCursors: q["prev"]}
	if n := len(rq.PrevCursors); n > maxPrevCursors {
		rq.PrevCursors = rq.PrevCursors[n-maxPrevCursors:]
	}
	rq.PageNo = len(rq.PrevCursors) + 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > rq.PageNo {
		rq.PageNo = n
	}
	f.Project = rq.Project
	bad := func(format string, args ...any) (client.FlowRunFilter, runsQuery, error) {
		return f, rq, errs.Errorf(errs.CodeInvalid, format, args...)
	}
	var in, out []state.Kind
	for _, raw := range q["state"] {
		for v := range strings.SplitSeq(raw, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			name, excluded := strings.CutPrefix(v, "!")
			k, err := state.ParseKind(name)
			if err != nil {
				return bad("state %q is not a state: use one of %s, or !State to leave one out", v, kindList())
			}
			rq.States = append(rq.States, v)
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
	if len(rq.States) > 0 && len(f.States) == 0 {
		return bad("the state filter leaves out every state: select fewer exclusions")
	}
	for _, raw := range q["label"] {
		for l := range strings.SplitSeq(raw, ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(rq.Labels, l) {
				rq.Labels = append(rq.Labels, l)
			}
		}
	}
	if len(rq.Labels) > maxFilterValues {
		return bad("%d labels: filter by at most %d", len(rq.Labels), maxFilterValues)
	}
	params := map[string]string{}
	for _, raw := range q["param"] {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		name, value, ok := strings.Cut(raw, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return bad("parameter filter %q is not name=value (for example day=2026-11-26)", raw)
		}
		if _, dup := params[name]; dup {
			return bad("parameter %q is filtered twice: give it one value", name)
		}
		params[name] = value
		rq.Params = append(rq.Params, name+"="+value)
	}
	if len(rq.Params) > maxFilterValues {
		return bad("%d parameter filters: use at most %d", len(rq.Params), maxFilterValues)
	}
	f.Labels = rq.Labels
	if len(params) > 0 {
		f.Params = params
	}
	var err error
	rq.After, f.CreatedAfter, err = filterTime(q.Get("after"), "after", loc)
	if err != nil {
		return f, rq, err
	}
	rq.Before, f.CreatedBefore, err = filterTime(q.Get("before"), "before", loc)
	if err != nil {
		return f, rq, err
	}
	if r := q.Get("range"); r != "" {
		i := slices.IndexFunc(runRanges, func(x timeRange) bool { return x.Value == r })
		if i < 0 {
			return bad("range %q is not one of 1h, 24h, 7d, 30d", r)
		}
		rq.Range = r
		if since := now.Add(-runRanges[i].D); since.After(f.CreatedAfter) {
			f.CreatedAfter = since
		}
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		return bad("the time range is empty: \"after\" must be earlier than \"before\"")
	}
	rq.Text = strings.TrimSpace(q.Get("q"))
	if len(rq.Text) > maxFilterText {
		return bad("the text search is %d bytes long: keep it under %d", len(rq.Text), maxFilterText)
	}
	f.Text = rq.Text
	f.Limit = defaultRunPage
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxRunPage {
			return bad("limit %q is not a number from 1 to %d", l, maxRunPage)
		}
		f.Limit = n
	}
	rq.Limit = f.Limit
	f.Cursor = rq.Cursor
	return f, rq, nil
}

// filterTime parses a time filter: a datetime-local ("2026-11-26T14:03",
// optionally with seconds) in loc, or RFC 3339. It returns the value as
// the form shows it again.
func filterTime(v, name string, loc *time.Location) (string, time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", time.Time{}, nil
	}
	for _, layout := range []string{dateInput, dateInput + ":05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return v, t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return v, t, nil
	}
	return v, time.Time{}, errs.Errorf(errs.CodeInvalid, "%s %q is not a time: use YYYY-MM-DDTHH:MM (in %s) or RFC 3339", name, v, loc)
}

func kindList() string {
	names := make([]string, 0, len(state.Kinds()))
	for _, k := range state.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

// runsFilter is a parsed runs-list filter with its flow resolved and the
// flows of its project (for the form and the rows' flow names).
type runsFilter struct {
	q     runsQuery
	f     client.FlowRunFilter
	flows []api.Flow
}

// resolveRuns parses a runs-list query and resolves its flow name; a
// filter that is not valid is a CodeInvalid error, a flow that does not
// exist CodeNotFound.
func resolveRuns(ctx context.Context, s *session, q url.Values, loc *time.Location, now time.Time) (runsFilter, error) {
	f, rq, err := runFilter(q, loc, now)
	rf := runsFilter{q: rq, f: f}
	if err != nil {
		return rf, err
	}
	if rf.flows, err = s.api.Flows(ctx, rq.Project, ""); err != nil {
		return rf, err
	}
	if rq.Flow != "" {
		i := slices.IndexFunc(rf.flows, func(fl api.Flow) bool { return fl.Name == rq.Flow })
		if i < 0 {
			return rf, errs.Errorf(errs.CodeNotFound, "there is no flow named %q in project %q", rq.Flow, cmp.Or(rq.Project, "default"))
		}
		rf.f.FlowID = rf.flows[i].ID
	}
	return rf, nil
}

type runsData struct {
	runsQuery
	Projects  []api.Project
	Flows     []api.Flow
	Kinds     []state.Kind
	Ranges    []timeRange
	Zone      string
	Rows      []runRow
	Page      int
	Next      string // URLs, empty when there is no such page
	Prev      string
	First     string // the first page of the same filter
	Poll      string // GET /ui/runs/new with the filter and page
	Since     string // when the page was read (RFC 3339), for Poll
	CanAct    bool   // the role may cancel and retry: the bulk forms
	BulkQuery string // the filter the bulk forms post
	ParamRows []string
}

// Selected reports whether a state option is selected.
func (d runsData) Selected(value string) bool { return contains(d.States, value) }

// LabelText is the label filter as the form's field shows it.
func (d runsData) LabelText() string { return strings.Join(d.Labels, ", ") }

// RangeURL is the first page of the same filter with the quick range r.
func (d runsData) RangeURL(r string) string {
	q := d.runsQuery
	q.Range = r
	return q.firstPage()
}

type runRow struct {
	Run      api.FlowRun
	Flow     string
	Start    time.Time
	Duration string
	Tick     template.HTMLAttr // data-tick attributes while it runs
	Tasks    []runTaskCount
}

// runTaskCount is how many of a run's task runs are in a state.
type runTaskCount struct {
	Kind state.Kind
	N    int64
}

// Class is the colour class of the count's state.
func (c runTaskCount) Class() string { return stateClass(c.Kind) }

// Icon is the icon of the count's state.
func (c runTaskCount) Icon() string { return stateIcons[c.Kind] }

func (u *UI) runsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	v.Title = "Runs"
	loc := readPrefs(r).location()
	now := time.Now()
	rf, ferr := resolveRuns(ctx, s, r.URL.Query(), loc, now)
	d := runsData{runsQuery: rf.q, Kinds: state.Kinds(), Ranges: runRanges, Zone: loc.String(), Flows: rf.flows,
		Page: rf.q.PageNo, First: rf.q.firstPage(), Since: now.UTC().Format(time.RFC3339Nano)}
	d.ParamRows = append(slices.Clone(d.Params), "")
	v.Data = &d
	var err error
	if d.Projects, err = s.api.Projects(ctx); err != nil {
		return "", err
	}
	if ferr != nil {
		if code := errs.CodeOf(ferr); code != errs.CodeInvalid && code != errs.CodeNotFound {
			return "", ferr
		}
		v.Status = statusOf(ferr)
		v.Error = ferr.Error()
		if errs.CodeOf(ferr) == errs.CodeNotFound {
			v.Error = "There is no flow named " + strconv.Quote(d.Flow) + " in project " + strconv.Quote(cmp.Or(d.Project, "default")) + "."
		}
		if d.Flows == nil {
			d.Flows, _ = s.api.Flows(ctx, d.Project, "")
		}
		return "runs", nil
	}
	f := rf.f
	f.Limit = d.Limit
	f.TaskCounts = true
	page, err := s.api.FlowRuns(ctx, f)
	if err != nil {
		return "", err
	}
	names := flowNames(d.Flows)
	for _, run := range page.FlowRuns {
		d.Rows = append(d.Rows, u.runListRow(ctx, s, run, names, now))
	}
	if canWrite(ctx, s) {
		d.CanAct = true
		d.BulkQuery = strings.TrimPrefix(strings.TrimPrefix(rf.q.firstPage(), "/ui/runs"), "?")
	}
	pq := rf.q.filterValues()
	pq.Set("limit", strconv.Itoa(d.Limit))
	if f.Cursor != "" {
		pq.Set("cursor", f.Cursor)
	}
	d.Poll = "/ui/runs/new?" + pq.Encode()
	q := r.URL.Query()
	prev := rf.q.PrevCursors
	if page.NextCursor != "" && page.NextCursor != f.Cursor {
		nq := cloneValues(q)
		nq.Set("cursor", page.NextCursor)
		nq["prev"] = append(slices.Clone(prev), f.Cursor)
		if n := len(nq["prev"]); n > maxPrevCursors {
			nq["prev"] = nq["prev"][n-maxPrevCursors:]
		}
		nq.Set("page", strconv.Itoa(d.Page+1))
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
		if d.Page > 2 {
			pq.Set("page", strconv.Itoa(d.Page-1))
		} else {
			pq.Del("page")
		}
		d.Prev = "/ui/runs?" + pq.Encode()
	}
	return "runs", nil
}

// flowNames maps flow IDs to names.
func flowNames(flows []api.Flow) map[string]string {
	names := make(map[string]string, len(flows))
	for _, fl := range flows {
		names[fl.ID] = fl.Name
	}
	return names
}

// runListRow is a run's row in the list; a flow not in names (another
// project's) is looked up once and remembered.
func (u *UI) runListRow(ctx context.Context, s *session, run api.FlowRun, names map[string]string, now time.Time) runRow {
	name, ok := names[run.FlowID]
	if !ok {
		if fd, err := s.api.Flow(ctx, run.FlowID); err == nil {
			name = fd.Flow.Name
		} else {
			name = run.FlowID
		}
		names[run.FlowID] = name
	}
	row := runRow{Run: run, Flow: name, Start: runBegan(run, nil), Duration: runDuration(run, nil, now), Tasks: taskCounts(run)}
	if el, ok := runTicking(run, nil, now); ok {
		row.Tick = tickAttrs(el)
	}
	return row
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// runBegan is when a run started: its first Running state, or, without
// its history, the later of its creation and its scheduled time.
func runBegan(run api.FlowRun, history []state.State) time.Time {
	start := run.CreatedAt
	if run.ScheduledAt.After(start) {
		start = run.ScheduledAt
	}
	for _, h := range history {
		if h.Kind == state.Running {
			return h.Time
		}
	}
	return start
}

// runDuration is how long a run ran: from its first Running state (or,
// without its history, its creation) to its end, or to now while it runs.
// A run that has not started has none.
func runDuration(run api.FlowRun, history []state.State, now time.Time) string {
	k := run.State.Kind
	if k == state.Pending || k == state.Scheduled || k == state.Submitted {
		return "—"
	}
	start := runBegan(run, history)
	end := now
	if k.Finished() {
		end = run.State.Time
	}
	if end.Before(start) {
		return "—"
	}
	return duration(end.Sub(start))
}

// runTicking is how long a run that is running has run, for a duration
// that ticks in the browser; ok is false when it is not running.
func runTicking(run api.FlowRun, history []state.State, now time.Time) (time.Duration, bool) {
	k := run.State.Kind
	if k == state.Pending || k == state.Scheduled || k == state.Submitted || k.Finished() {
		return 0, false
	}
	d := now.Sub(runBegan(run, history))
	return d, d >= 0
}

// tickAttrs are the attributes of a duration that ui.js makes tick:
// data-tick and data-elapsed, the milliseconds it had run when the page
// was made (the browser adds the time since, so clocks need not agree).
func tickAttrs(elapsed time.Duration) template.HTMLAttr {
	return template.HTMLAttr(fmt.Sprintf(`data-tick data-elapsed="%d"`, elapsed.Milliseconds()))
}

// runTick is the template function that makes the run page's duration
// tick: {{runTick .Run .History}}. It ticks while the page's state badge
// (#run-state, which live.js updates) shows a running state, also when
// the run starts while the page is open.
func runTick(run api.FlowRun, history []state.State) template.HTMLAttr {
	if el, ok := runTicking(run, history, time.Now()); ok {
		return tickAttrs(el) + ` data-tick-while="#run-state"`
	}
	return `data-tick-while="#run-state"` // it ticks once it runs
}

// taskCounts are a run's task-run counts by state, in the states' order.
func taskCounts(run api.FlowRun) []runTaskCount {
	var out []runTaskCount
	for _, k := range state.Kinds() {
		if n := run.TaskCounts[k]; n > 0 {
			out = append(out, runTaskCount{Kind: k, N: int64(n)})
		}
	}
	return out
}

// runsPoll is the answer of GET /ui/runs/new: how many runs matching the
// filter were created since the page was read (on the first page only),
// and the page's rows as they are now.
type runsPoll struct {
	New  int64     `json:"new"`
	Rows []pollRow `json:"rows"`
}

// pollRow is a row's state, duration and task counts.
type pollRow struct {
	ID       string      `json:"id"`
	State    string      `json:"state"`
	Class    string      `json:"class"`
	Icon     string      `json:"icon"`
	Duration string      `json:"duration"`
	Elapsed  *int64      `json:"elapsed,omitempty"` // ms, while it runs (it ticks)
	Tasks    []pollTasks `json:"tasks"`
}

type pollTasks struct {
	State string `json:"state"`
	Class string `json:"class"`
	Icon  string `json:"icon"`
	N     int64  `json:"n"`
}

// runsNew answers GET /ui/runs/new?<the list's filter>&since=RFC3339:
// the runs list's script polls it for the "N new runs — show" banner and
// the rows' states. Signed out, it answers 401.
func (u *UI) runsNew(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	fail := func(err error) {
		status := statusOf(err)
		if errs.CodeOf(err) == errs.CodeUnauthorized {
			status = http.StatusUnauthorized
		}
		if status >= 500 {
			u.log.ErrorContext(ctx, "ui runs poll failed", "err", err)
		}
		http.Error(w, err.Error(), status)
	}
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil {
		fail(errs.Errorf(errs.CodeInvalid, "since %q is not an RFC 3339 time", q.Get("since")))
		return
	}
	now := time.Now()
	rf, err := resolveRuns(ctx, s, q, readPrefs(r).location(), now)
	if err != nil {
		fail(err)
		return
	}
	out := runsPoll{Rows: []pollRow{}}
	if rf.f.Cursor == "" {
		nf := rf.f
		if since.After(nf.CreatedAfter) {
			nf.CreatedAfter = since
		}
		if nf.CreatedBefore.IsZero() || nf.CreatedAfter.Before(nf.CreatedBefore) {
			c, err := s.api.FlowRunCounts(ctx, nf)
			if err != nil {
				fail(err)
				return
			}
			out.New = c.Total
		}
	}
	f := rf.f
	f.TaskCounts = true
	page, err := s.api.FlowRuns(ctx, f)
	if err != nil {
		fail(err)
		return
	}
	for _, run := range page.FlowRuns {
		k := run.State.Kind
		row := pollRow{ID: run.ID, State: k.String(), Class: stateClass(k), Icon: stateIcons[k], Duration: runDuration(run, nil, now), Tasks: []pollTasks{}}
		if el, ok := runTicking(run, nil, now); ok {
			ms := el.Milliseconds()
			row.Elapsed = &ms
		}
		for _, tc := range taskCounts(run) {
			row.Tasks = append(row.Tasks, pollTasks{State: tc.Kind.String(), Class: stateClass(tc.Kind), Icon: stateIcons[tc.Kind], N: tc.N})
		}
		out.Rows = append(out.Rows, row)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
