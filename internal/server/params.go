package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/internal/state"
)

// query reads query parameters, collecting the first problem.
type query struct {
	v   url.Values
	err error
}

func newQuery(r *http.Request) *query { return &query{v: r.URL.Query()} }

func (q *query) str(name string) string { return q.v.Get(name) }

func (q *query) fail(format string, args ...any) {
	if q.err == nil {
		q.err = invalid(format, args...)
	}
}

func (q *query) int(name string, def int) int {
	s := q.v.Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		q.fail("query parameter %s=%q is not a whole number ≥ 0", name, s)
		return def
	}
	return n
}

func (q *query) int64(name string) int64 {
	s := q.v.Get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		q.fail("query parameter %s=%q is not a whole number ≥ 0", name, s)
		return 0
	}
	return n
}

func (q *query) time(name string) time.Time {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.fail("query parameter %s=%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, s)
	}
	return t
}

func (q *query) bool(name string) bool {
	s := q.v.Get(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		q.fail("query parameter %s=%q is not true or false", name, s)
	}
	return b
}

func (q *query) duration(name string, def time.Duration) time.Duration {
	s := q.v.Get(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		q.fail("query parameter %s=%q is not a duration such as 30s", name, s)
		return def
	}
	return d
}

func (q *query) kinds(name string) []state.Kind {
	s := q.v.Get(name)
	if s == "" {
		return nil
	}
	var out []state.Kind
	for _, part := range strings.Split(s, ",") {
		k, err := state.ParseKind(strings.TrimSpace(part))
		if err != nil {
			q.fail("query parameter %s: %v", name, err)
			return nil
		}
		out = append(out, k)
	}
	return out
}
