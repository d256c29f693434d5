package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
)

// The run page's logs tab.

// maxLogLines is how many log lines of a run the logs tab reads.
const maxLogLines = 100_000

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
