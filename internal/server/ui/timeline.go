package ui

import (
	"fmt"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// The run page's timeline (Gantt) tab: one row per task, and one per
// mapped task (the span of its children, with their counts), each bar
// placed from times the server computes.
//
// The times are derived from what the run's detail holds, without
// reading each task run's history (a 5,000-way map would take 5,000
// reads):
//
//   - a task run that is Running (or Cancelling) started at its state's
//     time and has not ended: its bar reaches "now";
//   - a finished task run ended at its state's time, and is taken to have
//     started when it became ready: when the last of its upstream tasks
//     ended (or, for a first task, when the run started), but not before
//     its task run was created. Its bar so includes the time it waited
//     for a worker: an upper bound of its running time;
//   - a Retrying task run started when it became ready and has not ended;
//   - a task run not started yet (Pending, Scheduled) has no bar;
//   - a mapped task spans from when it became ready (or its first running
//     child, if earlier) to when its last child ended, or "now" while a
//     child has not finished.
//
// The task-run page shows a task's exact state history.

// timelineMinWidth is the least width of a bar, percent of the axis, so
// a task that took no time still shows one.
const timelineMinWidth = 0.4

// timelineSpan is when a row's bar starts and ends; a zero Start means
// no bar, a zero End a bar still growing.
type timelineSpan struct {
	Start, End time.Time
}

// timelineRow is a row of the timeline.
type timelineRow struct {
	Key   string
	Kind  state.Kind
	Group *taskGroup
	Text  string // a group's counts
	Span  timelineSpan
	X, W  string // the bar's left and width, percent of the axis
	Dur   string
	URL   string // the task-run page
	Class string // the state's colour class
	// The span in Unix milliseconds (0: none), for live.js.
	StartMS, EndMS int64
}

// timelineData is the timeline tab.
type timelineData struct {
	Start, End time.Time // the axis
	Open       bool      // the run has not finished: the axis grows
	Rows       []timelineRow
	Ticks      []string // offsets from Start at 0, ¼, ½, ¾ and the end
	// The axis and the server's clock in Unix milliseconds, for live.js.
	StartMS, EndMS, NowMS int64
}

// msOf is a time in Unix milliseconds, 0 for the zero time.
func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// runStart is when the run started: its first Running state, else when
// it was created.
func runStart(run api.FlowRun, history []state.State) time.Time {
	for _, h := range history {
		if h.Kind == state.Running {
			return h.Time
		}
	}
	return run.CreatedAt
}

// timelineSpans computes the span of every plain task run (by key) and
// every group (by the mapped task's ID), visiting the graph's tasks in
// layer order so a task's upstream spans are known before it.
func timelineSpans(l *graphLayout, rt *runTasks, start time.Time) map[string]timelineSpan {
	spans := make(map[string]timelineSpan, len(rt.Plain)+len(rt.Groups))
	ready := func(id string, created time.Time) time.Time {
		r := start
		var ups []string
		if l != nil {
			ups = l.Up[id]
		}
		for _, u := range ups {
			if s := spans[u]; !s.End.IsZero() && s.End.After(r) {
				r = s.End
			}
		}
		if created.After(r) {
			r = created
		}
		return r
	}
	plain := func(key string, tr *api.TaskRun) {
		k := tr.State.Kind
		var s timelineSpan
		switch {
		case k == state.Running || k == state.Cancelling:
			s.Start = tr.State.Time
		case k == state.Retrying:
			s.Start = ready(key, tr.CreatedAt)
		case k.Finished():
			s.End = tr.State.Time
			s.Start = ready(key, tr.CreatedAt)
			if s.Start.After(s.End) {
				s.Start = s.End
			}
		}
		spans[key] = s
	}
	group := func(g *taskGroup, firstRunning, lastEnd time.Time) {
		var s timelineSpan
		if !g.Started && !g.Kind.Finished() {
			spans[g.Base] = s
			return
		}
		var created time.Time
		if g.Parent != nil {
			created = g.Parent.CreatedAt
		}
		s.Start = ready(g.Base, created)
		if !firstRunning.IsZero() && firstRunning.Before(s.Start) {
			s.Start = firstRunning
		}
		if g.Finished || (g.Parent != nil && g.Parent.State.Kind.Finished()) {
			s.End = lastEnd
			if g.Parent != nil && g.Parent.State.Kind.Finished() && g.Parent.State.Time.After(s.End) {
				s.End = g.Parent.State.Time
			}
			if s.Start.After(s.End) {
				s.Start = s.End
			}
		}
		spans[g.Base] = s
	}
	// The children's first running and last end times, per group.
	first := map[string]time.Time{}
	last := map[string]time.Time{}
	for _, tr := range rt.children {
		base := taskBase(tr.Key)
		t := tr.State.Time
		switch k := tr.State.Kind; {
		case k == state.Running:
			if f, ok := first[base]; !ok || t.Before(f) {
				first[base] = t
			}
		case k.Finished():
			if t.After(last[base]) {
				last[base] = t
			}
		}
	}
	seen := map[string]bool{}
	visit := func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		if g := rt.Groups[id]; g != nil {
			group(g, first[id], last[id])
		} else if tr := rt.Plain[id]; tr != nil {
			plain(id, tr)
		}
	}
	if l != nil {
		for _, id := range l.Order {
			visit(id)
		}
	}
	for _, row := range rt.Rows { // task runs the graph does not have
		visit(row.Key)
	}
	return spans
}

// timelineOf builds the timeline tab of a run.
func timelineOf(run api.FlowRun, history []state.State, l *graphLayout, rt *runTasks, now time.Time) *timelineData {
	td := &timelineData{Start: runStart(run, history), Open: !run.State.Kind.Finished()}
	spans := timelineSpans(l, rt, td.Start)
	td.End = td.Start
	if run.State.Kind.Finished() {
		td.End = run.State.Time
	}
	var keys []string
	seen := map[string]bool{}
	if l != nil {
		for _, id := range l.Order {
			keys = append(keys, id)
			seen[id] = true
		}
	}
	for _, row := range rt.Rows {
		if !seen[row.Key] {
			keys = append(keys, row.Key)
			seen[row.Key] = true
		}
	}
	for _, k := range keys {
		s := spans[k]
		if !s.Start.IsZero() && s.Start.Before(td.Start) {
			td.Start = s.Start
		}
		end := s.End
		if !s.Start.IsZero() && end.IsZero() {
			end = now
		}
		if end.After(td.End) {
			td.End = end
		}
	}
	if td.Open && now.After(td.End) {
		td.End = now
	}
	total := td.End.Sub(td.Start)
	pct := func(d time.Duration, least float64) string {
		p := least
		if total > 0 {
			p = max(100*float64(d)/float64(total), least)
		}
		return fmt.Sprintf("%.2f%%", p)
	}
	for _, k := range keys {
		s := spans[k]
		row := timelineRow{Key: k, Span: s, Kind: state.Pending, URL: taskRunURL(run.ID, k), StartMS: msOf(s.Start), EndMS: msOf(s.End)}
		if g := rt.Groups[k]; g != nil {
			row.Group, row.Kind, row.Text = g, g.Kind, g.countsText(0)
		} else if tr := rt.Plain[k]; tr != nil {
			row.Kind = tr.State.Kind
		} else if l != nil {
			if n, ok := l.node(k); ok && n.Mapped {
				row.Group = &taskGroup{Base: k}
				row.Text = row.Group.countsText(0)
			}
		}
		if !s.Start.IsZero() {
			end := s.End
			if end.IsZero() {
				end = now
			}
			row.X = pct(s.Start.Sub(td.Start), 0)
			row.W = pct(max(end.Sub(s.Start), 0), timelineMinWidth)
			row.Dur = duration(end.Sub(s.Start))
		}
		row.Class = stateClass(row.Kind)
		td.Rows = append(td.Rows, row)
	}
	td.StartMS, td.EndMS, td.NowMS = msOf(td.Start), msOf(td.End), msOf(now)
	for i := range 5 {
		td.Ticks = append(td.Ticks, "+"+duration(total*time.Duration(i)/4))
	}
	return td
}
