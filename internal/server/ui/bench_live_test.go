//go:build unix

package ui_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/state"
)

// liveBenchClient is one browser tab's event stream in BenchmarkLiveFanOut:
// it reads /ui/runs/{id}/events, reconnecting with Last-Event-ID when the
// server ends the stream (every 20 s), and reports the first time it sees
// each task key Running.
type liveBenchClient struct {
	hc     *http.Client
	url    string
	events *atomic.Int64
	seen   chan<- liveBenchSeen
}

type liveBenchSeen struct {
	run, key string
	at       time.Time
}

func (c *liveBenchClient) loop(ctx context.Context, run string) {
	last := ""
	got := map[string]bool{}
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "GET", c.url, nil)
		if err != nil {
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		res, err := c.hc.Do(req)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(res.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				last = line[4:]
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				c.events.Add(1)
				if event != "task" || !strings.Contains(line, `"state":"Running"`) {
					continue
				}
				_, rest, _ := strings.Cut(line, `"key":"`)
				key, _, _ := strings.Cut(rest, `"`)
				if !got[key] {
					// (a reconnection sends every state again: the first counts)
					got[key] = true
					select {
					case c.seen <- liveBenchSeen{run: run, key: key, at: time.Now()}:
					case <-ctx.Done():
						return
					}
				}
			}
		}
		res.Body.Close()
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLiveFanOut: 100 browser tabs follow 4 live runs (25 each) over
// /ui/runs/{id}/events. Each op changes a task's state on every run and
// waits until all 100 streams have it. It reports the latency from the
// write to each stream (p50, p99); the CPU it takes (the whole test
// process: server, the runs' writes and the 100 clients' reading) per
// state change delivered to a stream, polling included, and per second
// (cores); the CPU of the 100 streams idle; the events sent per second.
// tasks: the tasks tab's stream (logs=0); logs: the logs tab's, which
// reads new log lines too.
func BenchmarkLiveFanOut(b *testing.B) {
	for _, tab := range []string{"tasks", "logs"} {
		b.Run("tab="+tab, func(b *testing.B) { liveBenchFanOut(b, tab == "logs") })
	}
}

func liveBenchFanOut(b *testing.B, logs bool) {
	const runs, clients = 4, 100
	e := newEnv(b)
	e.flow("etl", "")
	u := e.user()
	u.signIn(e.admin)
	var runners []*runner
	for range runs {
		run := e.run("etl", "")
		rn := e.runner(run.ID)
		rn.run(state.Running, "")
		rn.logs("INFO started")
		runners = append(runners, rn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var events atomic.Int64
	seen := make(chan liveBenchSeen, 4*clients)
	hc := &http.Client{Jar: u.hc.Jar, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for i := range clients {
		rn := runners[i%runs]
		q := "?logs=0"
		if logs {
			q = "?after=0&n=0"
		}
		c := &liveBenchClient{hc: hc, url: e.url + "/ui/runs/" + rn.id + "/events" + q, events: &events, seen: seen}
		wg.Add(1)
		go func() { defer wg.Done(); c.loop(ctx, rn.id) }()
	}
	// Every stream is open once it sent a first task state.
	change := func(key string) []time.Duration {
		at := map[string]time.Time{}
		for _, rn := range runners {
			at[rn.id] = time.Now()
			rn.task(key, state.Running, "")
			if logs {
				rn.logs("INFO " + key + " started")
			}
		}
		var lat []time.Duration
		deadline := time.After(30 * time.Second)
		for len(lat) < clients {
			select {
			case s := <-seen:
				if s.key == key {
					lat = append(lat, s.at.Sub(at[s.run]))
				}
			case <-deadline:
				b.Fatalf("after 30 s, %d of %d streams had %s's state", len(lat), clients, key)
			}
		}
		return lat
	}
	change("warm-up")

	// Idle: 100 open streams, nothing changing.
	const idle = 3 * time.Second
	cpu0 := cpuTime()
	time.Sleep(idle)
	idleCores := float64(cpuTime()-cpu0) / float64(idle)

	var lat []time.Duration
	events.Store(0)
	cpu0, wall0 := cpuTime(), time.Now()
	i := 0
	for b.Loop() {
		i++
		// The streams poll every 250 ms; a change comes at any point of
		// that period, not just after the poll that saw the last one.
		b.StopTimer()
		time.Sleep(time.Duration(rand.Int64N(int64(300 * time.Millisecond))))
		b.StartTimer()
		lat = append(lat, change(fmt.Sprintf("t%d", i))...)
	}
	cpu, wall, n := cpuTime()-cpu0, time.Since(wall0), events.Load()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*clients), "cpu-µs/delivery")
	b.ReportMetric(float64(cpu)/float64(wall), "cores")
	b.ReportMetric(idleCores, "idle-cores")
	b.ReportMetric(float64(n)/wall.Seconds(), "events/s")
}

// BenchmarkLogsTab: the server's time to render a run's logs tab (read
// through the API, filter, render), with the whole log and with a search.
func BenchmarkLogsTab(b *testing.B) {
	for _, size := range []int{20_000, 100_000} {
		e := newEnv(b)
		e.flow("etl", "")
		lines := make([]logsLine, size)
		for i := range lines {
			lines[i] = logsLine{"", "INFO", fmt.Sprintf("batch %d: read 1200 rows from the upstream API in %d ms", i+1, i%977), `{"batch":` + fmt.Sprint(i+1) + `}`}
			if i%100 == 7 {
				lines[i] = logsLine{"", "ERROR", fmt.Sprintf("batch %d: the Upstream said 503 (Service Unavailable)", i+1), ""}
			}
		}
		run := logsSeed(e, "etl", lines)
		u := e.user()
		u.signIn(e.admin)
		for _, bc := range []struct{ name, query string }{
			{"all", ""},
			{"search", "&q=service+unavailable"}, // 1 line in 100
			{"search-none", "&q=no+such+text"},
		} {
			if size > 20_000 && bc.name == "all" {
				continue // the page itself is 50 MB
			}
			b.Run(fmt.Sprintf("lines=%d/%s", size, bc.name), func(b *testing.B) {
				path := "/ui/runs/" + run.ID + "?tab=logs" + bc.query
				var bytes int
				cpu0 := cpuTime()
				for b.Loop() {
					bytes = len(u.mustGet(path).body)
				}
				b.ReportMetric(float64(bytes)/1e6, "MB/page")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
