package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; Flush it when done.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(toAny(header)...)
	return t
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// row writes one row; empty cells show as "-".
func (t *table) row(cells ...any) {
	for i, c := range cells {
		s := oneLineText(fmt.Sprint(c))
		if s == "" {
			s = "-"
		}
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, s)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

// oneLineText keeps the first line of s, at most 100 characters, and no
// tabs (they would break the columns).
func oneLineText(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	s = strings.ReplaceAll(s, "\t", " ")
	if r := []rune(s); len(r) > 100 {
		s = string(r[:97]) + "..."
	}
	return s
}

// timeFormatter formats times for tables: relative ("3m ago") on a
// terminal, RFC 3339 in UTC otherwise (stable for scripts and logs).
type timeFormatter struct {
	relative bool
	now      func() time.Time
}

func (f timeFormatter) format(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if !f.relative {
		return t.UTC().Format(time.RFC3339)
	}
	d := f.now().Sub(t)
	if d < 0 {
		return "in " + roughDuration(-d)
	}
	if d < time.Second {
		return "just now"
	}
	return roughDuration(d) + " ago"
}

// roughDuration is d in its largest unit: 45s, 3m, 5h, 2d.
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// times returns the time formatter for c's standard output.
func (c *CLI) times() timeFormatter {
	return timeFormatter{relative: c.terminal(), now: time.Now}
}

// plural is "1 project", "2 projects".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
