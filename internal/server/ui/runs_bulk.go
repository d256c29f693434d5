package ui

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// Bulk actions over a runs-list filter: POST /ui/runs/bulk.
//
// The runs list's bulk forms post the list's filter (not its page) and an
// action, cancel or retry. The first post answers a confirmation page
// that names how many runs the action will act on, carrying that count
// and the moment of the question (asof). The moment pins the set: the
// count and the runs acted on are the runs created before it (unless the
// filter's own "before" is earlier), so runs created later, e.g. by a
// schedule, are not part of the action, and a quick range such as "the
// last 24 hours" stays the same window. The confirmation's post
// (confirm=1) counts again and, if the count changed (a counted run
// changed state or was deleted), shows the new count and asks again;
// else it acts on every matching run, page by page through the API with
// the user's token, and shows what it did and what it skipped and why.

// maxBulkRuns bounds the runs one bulk action acts on.
var maxBulkRuns = 10_000

// bulkTimeout bounds the time one bulk action acts.
const bulkTimeout = 10 * time.Minute

// bulkPage is the page size the bulk actions read runs in.
const bulkPage = 1000

// bulkAction is what a bulk action does to a run.
type bulkAction struct {
	Name   string // cancel, retry
	Verb   string // "Cancel", as the button says
	Done   string // "cancelled", as the summary says
	Button string // the confirmation button's id
	// eligible reports whether the action applies to a run in kind k; if
	// not, why it skips it.
	eligible func(k state.Kind) (bool, string)
	act      func(ctx context.Context, c *client.Client, id string) error
}

var bulkActions = map[string]bulkAction{
	"cancel": {Name: "cancel", Verb: "Cancel", Done: "cancelled", Button: "bulk-confirm",
		eligible: func(k state.Kind) (bool, string) {
			if k.Finished() {
				return false, "already finished (" + k.String() + ")"
			}
			return true, ""
		},
		act: func(ctx context.Context, c *client.Client, id string) error {
			_, err := c.CancelFlowRun(ctx, id)
			return err
		}},
	// Retry acts on failed runs only (state.Kind.Failure). The API would
	// restart a cancelled run too, but a bulk retry right after a bulk
	// cancel would then bring back every run just cancelled.
	"retry": {Name: "retry", Verb: "Retry", Done: "restarted", Button: "bulk-confirm",
		eligible: func(k state.Kind) (bool, string) {
			switch {
			case k.Failure():
				return true, ""
			case !k.Finished():
				return false, "not finished (" + k.String() + ")"
			case k.Successful():
				return false, "succeeded (" + k.String() + ")"
			case k == state.Cancelled:
				return false, "cancelled (retry a cancelled run from its page)"
			}
			return false, "not failed (" + k.String() + ")"
		},
		act: func(ctx context.Context, c *client.Client, id string) error {
			_, err := c.RestartFlowRun(ctx, id)
			return err
		}},
}

// Kinds names the states the action acts on, e.g. "Failed, TimedOut or
// TriggerFailed".
func (a bulkAction) Kinds() string {
	var names []string
	for _, k := range state.Kinds() {
		if ok, _ := a.eligible(k); ok {
			names = append(names, k.String())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// bulkData is the confirmation and summary page's data.
type bulkData struct {
	Action   bulkAction
	Filter   string // the filter's URL query, posted back
	Describe string // the filter in words
	AsOf     string // the moment of the question, Unix milliseconds
	// Pinned is the moment of the question when it bounds the runs acted
	// on (runs created before it); zero when the filter's own "before" is
	// earlier.
	Pinned   time.Time
	Count    int64 // the runs it acts on
	Matching int64 // the runs the filter matches
	Skips    []bulkSkip
	Over     bool // Count is over maxBulkRuns
	Max      int
	Back     string // the runs list with the filter
	Result   *bulkResult
}

// bulkSkip is a reason runs were skipped and how many.
type bulkSkip struct {
	Reason string
	N      int64
}

// bulkResult is what a bulk action did.
type bulkResult struct {
	Done    int64
	Skipped int64
	Stopped string // an error that stopped it before the end
}

func (u *UI) bulkRuns(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	form := r.PostForm
	action, ok := bulkActions[form.Get("action")]
	if !ok {
		return "", errs.Errorf(errs.CodeInvalid, "action %q is not cancel or retry", form.Get("action"))
	}
	fq, err := url.ParseQuery(form.Get("filter"))
	if err != nil {
		return "", errs.Errorf(errs.CodeInvalid, "the filter %q could not be read: %v", form.Get("filter"), err)
	}
	// The moment of the question, in the milliseconds the form carries, so
	// that the question and its confirmation read the same set of runs.
	asof := time.UnixMilli(time.Now().UnixMilli())
	if a := form.Get("asof"); a != "" {
		ms, err := strconv.ParseInt(a, 10, 64)
		if err != nil || ms <= 0 {
			return "", errs.Errorf(errs.CodeInvalid, "asof %q is not a time in Unix milliseconds", a)
		}
		asof = time.UnixMilli(ms)
	}
	v.Title = action.Verb + " runs"
	rf, err := resolveRuns(ctx, s, fq, readPrefs(r).location(), asof)
	if err != nil {
		return "", err
	}
	// The role check the list's forms use: a role that may not act sees no
	// form, and a forged post is refused before anything is counted.
	if _, err := s.api.Secrets(ctx, ""); err != nil {
		if errs.CodeOf(err) == errs.CodeForbidden {
			return "", errs.Errorf(errs.CodeForbidden, "your token's role may not %s runs, so nothing was done", action.Name)
		}
		return "", err
	}
	// The page size goes back to the list, and does nothing here.
	filter := strings.TrimPrefix(strings.TrimPrefix(rf.q.firstPage(), "/ui/runs"), "?")
	d := bulkData{Action: action, Filter: filter, Describe: rf.q.Describe(), AsOf: strconv.FormatInt(asof.UnixMilli(), 10),
		Max: maxBulkRuns, Back: "/ui/runs"}
	if filter != "" {
		d.Back += "?" + filter
	}
	v.Data = &d
	f := rf.f
	f.Cursor, f.Limit = "", 0
	// Pin the set: runs created after the question are not part of it.
	if f.CreatedBefore.IsZero() || asof.Before(f.CreatedBefore) {
		f.CreatedBefore, d.Pinned = asof, asof
	}
	counts, err := countRuns(ctx, s.api, f)
	if err != nil {
		return "", err
	}
	d.Matching = counts.total
	for _, k := range state.Kinds() {
		n := counts.byKind[k]
		if n == 0 {
			continue
		}
		if ok, why := action.eligible(k); ok {
			d.Count += n
		} else {
			d.Skips = append(d.Skips, bulkSkip{why, n})
		}
	}
	d.Over = d.Count > int64(maxBulkRuns)
	if d.Over {
		v.Status = http.StatusBadRequest
		v.Error = fmt.Sprintf("%d runs match: a bulk action acts on at most %d runs at once. Narrow the filter (a flow, a state, a time range) and try again.", d.Count, maxBulkRuns)
		return "bulk", nil
	}
	if form.Get("confirm") != "1" {
		return "bulk", nil
	}
	want, err := strconv.ParseInt(form.Get("count"), 10, 64)
	if err != nil || want < 0 {
		return "", errs.Errorf(errs.CodeInvalid, "count %q is not a number of runs", form.Get("count"))
	}
	changed := func(now int64) (string, error) {
		d.Count = now
		v.Status = http.StatusConflict
		v.Error = fmt.Sprintf("Nothing was done: %d runs matched when you confirmed, and %d match now. Check the number and confirm again.", want, now)
		return "bulk", nil
	}
	if want != d.Count {
		return changed(d.Count)
	}
	// Read every run the action applies to, then check the count again.
	// The set is pinned to the runs created before the question, so a
	// difference means a counted run changed state or was deleted. Equal
	// counts are not proof of the same runs (one run may have stopped
	// matching as another created before the question started to): each
	// run is acted on through the API, which refuses a run that can no
	// longer be cancelled or restarted (it finished, it runs again), and
	// the summary lists it as skipped with the API's reason.
	ids, err := bulkTargets(ctx, s.api, f, action)
	if err != nil {
		return "", err
	}
	if int64(len(ids)) != want {
		return changed(int64(len(ids)))
	}
	// The action goes on if the browser leaves: half a bulk action would
	// surprise more than a whole one.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bulkTimeout)
	defer cancel()
	res := &bulkResult{}
	for _, sk := range d.Skips {
		res.Skipped += sk.N
	}
	d.Result = res
	refused := map[string]int64{}
	for _, id := range ids {
		err := action.act(actx, s.api, id)
		switch code := errs.CodeOf(err); {
		case err == nil:
			res.Done++
		case code == errs.CodeForbidden || code == errs.CodeUnauthorized:
			if res.Done == 0 {
				return "", err // nothing done yet: the API's refusal is the page
			}
			res.Stopped = err.Error()
		case code == errs.CodeConflict || code == errs.CodeNotFound || code == errs.CodeInvalid:
			// The run changed since it was read (it finished, it was
			// restarted or deleted): the API says why.
			why := "it changed before it could be " + action.Done + " (the API refused: " + err.Error() + ")"
			if code == errs.CodeNotFound {
				why = "it no longer exists"
			}
			refused[why]++
			res.Skipped++
		default:
			u.log.ErrorContext(ctx, "ui bulk action failed", "action", action.Name, "flow_run", id, "err", err)
			res.Stopped = err.Error()
		}
		if res.Stopped != "" {
			v.Status = statusOf(err)
			v.Error = fmt.Sprintf("The bulk %s stopped after %d runs: %s", action.Name, res.Done, res.Stopped)
			break
		}
	}
	for why, n := range refused {
		d.Skips = append(d.Skips, bulkSkip{why, n})
	}
	slices.SortStableFunc(d.Skips, func(a, b bulkSkip) int { return cmp.Compare(b.N, a.N) })
	v.Title = action.Verb + " runs: done"
	return "bulk", nil
}

// bulkTargets lists the IDs of the runs f matches that action applies to,
// newest first, reading at most maxBulkRuns+1.
func bulkTargets(ctx context.Context, c *client.Client, f client.FlowRunFilter, action bulkAction) ([]string, error) {
	// Ask the API for the kinds the action applies to only.
	kinds := f.States
	if len(kinds) == 0 {
		kinds = state.Kinds()
	}
	f.States = nil
	for _, k := range kinds {
		if ok, _ := action.eligible(k); ok {
			f.States = append(f.States, k)
		}
	}
	if len(f.States) == 0 {
		return nil, nil
	}
	f.Limit, f.Cursor = bulkPage, ""
	var ids []string
	for run, err := range c.AllFlowRuns(ctx, f) {
		if err != nil {
			return nil, fmt.Errorf("list the runs to %s: %w", action.Name, err)
		}
		if ok, _ := action.eligible(run.State.Kind); ok {
			ids = append(ids, run.ID)
		}
		if len(ids) > maxBulkRuns {
			break
		}
	}
	return ids, nil
}

// runCounts is how many runs a filter matches, in all and by state.
type runCounts struct {
	byKind map[state.Kind]int64
	total  int64
}

// countRuns counts the runs f matches.
func countRuns(ctx context.Context, c *client.Client, f client.FlowRunFilter) (runCounts, error) {
	f.TaskCounts = false
	counts, err := c.FlowRunCounts(ctx, f)
	if err != nil {
		return runCounts{}, fmt.Errorf("count runs: %w", err)
	}
	return runCounts{byKind: counts.Counts, total: counts.Total}, nil
}
