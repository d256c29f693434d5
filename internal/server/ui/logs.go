package ui

import (
	"bufio"
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
)

// The run page's logs tab, and its download as text.

// maxLogLines is how many log lines of a run the logs tab reads (the
// download reads them all).
const maxLogLines = 100_000

// logPage is how many lines one read of the API asks for: its most.
const logPage = 10_000

type logsData struct {
	Q, Level, Task string
	Levels         []string
	TaskKeys       []string // the task filter's choices
	Lines          []logLine
	Total          int
	Truncated      bool
	Tasks          map[string]string // task run ID → key
	Download       string            // the URL of the filtered log as text
	HTML           template.HTML     // the lines' <li> elements (see writeLogLines)
	Last           int64             // the ID of the last line shown: live lines come after it
}

// Filtered reports whether a filter hides lines (so new lines are not
// appended live).
func (d *logsData) Filtered() bool { return d.Q != "" || d.Level != "" || d.Task != "" }

type logLine struct {
	N         int
	Line      api.LogLine
	Time, ISO string // formatted in the user's zone, for writeLogLines
	Parts     []part // the message, split around the matches of q
	Attrs     []part // the attributes, split likewise (or whole)
	Task      string
}

type part struct {
	Text  string
	Match bool
}

var logLevels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

// logFilter keeps the log lines that match the logs tab's filters:
// q (case-insensitive, in the message and the attributes), level (the
// least level shown) and task (a task run's key; a mapped task's key
// also keeps its children's lines).
type logFilter struct {
	q, level, task string
	needle         string // q in lower case
	asciiNeedle    bool   // needle is ASCII: searched without allocating
	minLevel       int
	taskIDs        map[string]bool // the task runs task keeps
}

// newLogFilter reads the filters of a query. A task with no task run (yet)
// keeps no line.
func newLogFilter(q url.Values, tasks []api.TaskRun) (*logFilter, error) {
	f := &logFilter{q: q.Get("q"), level: strings.ToUpper(q.Get("level")), task: q.Get("task")}
	if f.level != "" {
		f.minLevel = slices.Index(logLevels, f.level)
		if f.minLevel < 0 {
			return nil, errs.Errorf(errs.CodeInvalid, "level %q is not one of %s", q.Get("level"), strings.Join(logLevels, ", "))
		}
	}
	f.needle = strings.ToLower(f.q)
	f.asciiNeedle = isASCII(f.needle)
	if f.task != "" {
		f.taskIDs = map[string]bool{}
		for _, t := range tasks {
			if t.Key == f.task || (strings.HasPrefix(t.Key, f.task+"[") && taskBase(t.Key) == f.task) {
				f.taskIDs[t.ID] = true
			}
		}
	}
	return f, nil
}

// keep reports whether a line passes the filters.
func (f *logFilter) keep(l *api.LogLine) bool {
	if f.minLevel > 0 && levelRank(l.Level) < f.minLevel {
		return false
	}
	if f.taskIDs != nil && !f.taskIDs[l.TaskRunID] {
		return false
	}
	return f.needle == "" || containsFold(f, l.Message) || containsFold(f, l.Attrs)
}

// containsFold reports whether s holds f's needle in any case. An ASCII
// needle in an ASCII text is compared byte by byte, folding case, with no
// copy; otherwise (where a letter's case may change its length or fold to
// ASCII, like the Kelvin sign) s is lowered first.
func containsFold[S ~string | ~[]byte](f *logFilter, s S) bool {
	if f.asciiNeedle && isASCII(s) {
		return indexFoldASCII(s, f.needle) >= 0
	}
	return strings.Contains(strings.ToLower(string(s)), f.needle)
}

// isASCII reports whether s has only ASCII bytes.
func isASCII[S ~string | ~[]byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// indexFoldASCII is the index of the first match of needle (ASCII, lower
// case) in s (ASCII), ignoring case, or -1.
func indexFoldASCII[S ~string | ~[]byte](s S, needle string) int {
	n := len(needle)
	if n == 0 {
		return 0
	}
	first := needle[0]
	for i := 0; i+n <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < n && lowerASCII(s[i+j]) == needle[j] {
			j++
		}
		if j == n {
			return i
		}
	}
	return -1
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// levelRank is a level's index in logLevels (the API writes them in upper
// case), or -1.
func levelRank(level string) int {
	switch level {
	case "DEBUG":
		return 0
	case "INFO":
		return 1
	case "WARN":
		return 2
	case "ERROR":
		return 3
	}
	return slices.Index(logLevels, strings.ToUpper(level))
}

// query is the filters as a URL query (without the tab).
func (f *logFilter) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"q": f.q, "level": f.level, "task": f.task} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// taskChoices lists the task filter's choices: the run's task keys, a
// mapped task once (its children are filtered by its key), and the chosen
// key if it is not one of them.
func taskChoices(tasks []api.TaskRun, chosen string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, t := range sortTasks(tasks) {
		k := taskBase(t.Key)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if chosen != "" && !seen[chosen] {
		keys = append(keys, chosen)
	}
	return keys
}

// readLogs reads a run's log lines and keeps those that pass the filters
// of q (see logFilter). Lines are numbered over the whole log, so a
// line's number and anchor do not change with the filters.
func readLogs(r *http.Request, s *session, id string, q url.Values, tasks []api.TaskRun) (*logsData, error) {
	f, err := newLogFilter(q, tasks)
	if err != nil {
		return nil, err
	}
	d := &logsData{Q: f.q, Level: f.level, Task: f.task, Levels: logLevels, TaskKeys: taskChoices(tasks, f.task), Tasks: map[string]string{}}
	for _, t := range tasks {
		d.Tasks[t.ID] = t.Key
	}
	d.Download = "/ui/runs/" + url.PathEscape(id) + "/logs.txt"
	if fq := f.query(); len(fq) > 0 {
		d.Download += "?" + fq.Encode()
	}
	tf := readPrefs(r).formatter()
	var after int64
	n := 0
	for {
		page, err := s.api.Logs(r.Context(), id, client.LogQuery{After: after, Limit: logPage})
		if err != nil {
			return nil, err
		}
		for i := range page.Logs {
			l := &page.Logs[i]
			n++
			if n > maxLogLines {
				d.Truncated = true
				break
			}
			if !f.keep(l) {
				continue
			}
			ll := logLine{N: n, Line: *l, Time: tf.Time(l.Time), ISO: tf.ISO(l.Time), Parts: split(l.Message, f.q), Task: d.Tasks[l.TaskRunID]}
			if len(l.Attrs) > 0 {
				ll.Attrs = split(string(l.Attrs), f.q)
			}
			d.Lines = append(d.Lines, ll)
		}
		if d.Truncated || len(page.Logs) == 0 || page.NextAfter <= after {
			break
		}
		after = page.NextAfter
	}
	d.Total = min(n, maxLogLines)
	d.HTML = writeLogLines(d.Lines)
	if len(d.Lines) > 0 {
		d.Last = d.Lines[len(d.Lines)-1].Line.ID
	}
	return d, nil
}

// writeLogLines writes the lines' <li> elements. It is the template's
// work, done in Go because a template's reflection costs about 10 µs a
// line: half of the time of a 20,000-line page. Every text is escaped;
// static/live.js builds the same markup for a line that comes live.
//
//	<li id="L12" class="lvl-INFO"><a class="ln" href="#L12">12</a> <time datetime="ISO">TIME</time>
//	<span class="lvl">INFO</span> <span class="task">KEY</span> <span class="msg">…</span> <span class="attrs">…</span></li>
func writeLogLines(lines []logLine) template.HTML {
	var b strings.Builder
	b.Grow(len(lines) * 256)
	esc := template.HTMLEscapeString
	parts := func(ps []part) {
		for _, p := range ps {
			if p.Match {
				b.WriteString("<mark>")
				b.WriteString(esc(p.Text))
				b.WriteString("</mark>")
			} else {
				b.WriteString(esc(p.Text))
			}
		}
	}
	for _, l := range lines {
		n := strconv.Itoa(l.N)
		lvl := esc(l.Line.Level)
		b.WriteString(`<li id="L` + n + `" class="lvl-` + lvl + `"><a class="ln" href="#L` + n + `">` + n + `</a> <time datetime="`)
		b.WriteString(esc(l.ISO) + `">` + esc(l.Time) + `</time> <span class="lvl">` + lvl + `</span>`)
		if l.Task != "" {
			b.WriteString(` <span class="task">` + esc(l.Task) + `</span>`)
		}
		b.WriteString(` <span class="msg">`)
		parts(l.Parts)
		b.WriteString(`</span>`)
		if len(l.Attrs) > 0 {
			b.WriteString(` <span class="attrs">`)
			parts(l.Attrs)
			b.WriteString(`</span>`)
		}
		b.WriteString("</li>\n")
	}
	return template.HTML(b.String()) // every text in it is escaped
}

// runLogsText serves GET /ui/runs/{id}/logs.txt: the run's log lines that
// pass the logs tab's filters, as text, one line each:
//
//	2026-11-26T14:03:05.120+01:00 INFO  [extract] 1200 rows read {"rows":1200}
//
// in the user's time zone. It reads the API a page at a time and writes
// each page as it comes, so a log of any length streams in bounded memory.
func (u *UI) runLogsText(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	det, err := s.api.FlowRun(ctx, id)
	if err != nil {
		return "", err
	}
	f, err := newLogFilter(r.URL.Query(), det.TaskRuns)
	if err != nil {
		return "", err
	}
	keys := map[string]string{}
	for _, t := range det.TaskRuns {
		keys[t.ID] = t.Key
	}
	loc := readPrefs(r).formatter().loc
	if loc == nil {
		loc = time.Local
	}
	// The first page is read before answering, so that a refusal is a page.
	var after int64
	page, err := s.api.Logs(ctx, id, client.LogQuery{Limit: logPage})
	if err != nil {
		return "", err
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+logFileName(id)+`"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for {
		for i := range page.Logs {
			l := &page.Logs[i]
			if f.keep(l) {
				line = appendLogText(line[:0], l, keys[l.TaskRunID], loc)
				_, _ = bw.Write(line)
			}
		}
		if err := bw.Flush(); err != nil {
			return "", nil // the client went away
		}
		if len(page.Logs) == 0 || page.NextAfter <= after {
			return "", nil
		}
		after = page.NextAfter
		if page, err = s.api.Logs(ctx, id, client.LogQuery{After: after, Limit: logPage}); err != nil {
			if ctx.Err() == nil {
				u.log.WarnContext(ctx, "ui logs.txt: reading the logs failed", "run", id, "after", after, "err", err)
			}
			// Abort the response, so the browser says the download
			// failed rather than keeping a file that looks whole.
			panic(http.ErrAbortHandler)
		}
	}
}

// appendLogText appends a log line as the download writes it.
func appendLogText(b []byte, l *api.LogLine, task string, loc *time.Location) []byte {
	b = l.Time.In(loc).AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, ' ')
	b = append(b, l.Level...)
	for i := len(l.Level); i < 5; i++ {
		b = append(b, ' ')
	}
	if task != "" {
		b = append(b, " ["...)
		b = append(b, task...)
		b = append(b, ']')
	}
	b = append(b, ' ')
	b = append(b, l.Message...)
	if a := bytes.TrimSpace(l.Attrs); len(a) > 0 && string(a) != "null" && string(a) != "{}" {
		b = append(b, ' ')
		b = append(b, a...)
	}
	return append(b, '\n')
}

// logFileName is the download's file name: run-ID.log.txt, with only
// letters, digits, '-' and '_' of the ID.
func logFileName(id string) string {
	safe := strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, id)
	return "run-" + safe + ".log.txt"
}

// split cuts s around the case-insensitive matches of q.
func split(s, q string) []part {
	if q == "" {
		return []part{{Text: s}}
	}
	var out []part
	ls, lq := strings.ToLower(s), strings.ToLower(q)
	if len(ls) != len(s) || len(lq) != len(q) { // a case change changed the length: no highlight
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
