// Command checkpoint shows how a flow picks up after a failure without
// redoing its expensive work.
//
// The flow downloads a file of temperatures (the slow, costly step),
// parses each line in its own mapped task run, and writes a report. The
// download is cached in the flow's result store for 24 hours, so when the
// report fails, the next run reuses the stored download instead of
// fetching it again. Try it:
//
//	go run ./examples/checkpoint run checkpoint --param fail=true   # download runs and is stored; report fails: exit 1
//	go run ./examples/checkpoint run checkpoint                     # download is Cached (no "downloading" line); exit 0
//
// The second run prints no "downloading" log line: the download task did
// not run, and its row in the summary says Cached.
//
// Results go to reeve-examples/checkpoint under the system's temporary
// directory (see DefaultResults); --results DIR (or a URL such as
// file:///abs/dir) puts them elsewhere. Delete the directory, or pass a
// fresh --results, to start over. The health check verifies that the
// cached task has a store it can open:
//
//	go run ./examples/checkpoint healthcheck
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve"
)

// DefaultResults is the flow's result store: a plain directory path is
// accepted (it becomes a file:// URL). It lives under the temporary
// directory so trying the example leaves nothing in your working tree.
var DefaultResults = filepath.Join(os.TempDir(), "reeve-examples", "checkpoint")

// Reading is one parsed line of the download.
type Reading struct {
	City  string  `json:"city"`
	TempC float64 `json:"temp_c"`
}

// Summary is what the report step produces.
type Summary struct {
	Cities  int     `json:"cities"`
	Warmest string  `json:"warmest"`
	MaxC    float64 `json:"max_c"`
}

// Download fetches the raw lines of source. It is the expensive step, so it
// caches its result for a day (keyed by its input, source) and checkpoints
// it. A real flow would fetch source over HTTP; this one makes up the data
// so the example runs offline.
var Download = reeve.NewTask1("checkpoint.download", func(ctx context.Context, source string) ([]string, error) {
	reeve.Logger(ctx).Info("downloading", "source", source)
	return []string{"oslo,3.5", "lisbon,17.0", "cairo,24.5", "reykjavik,-1.0", "lima,19.0"}, nil
}, reeve.CacheFor(24*time.Hour), reeve.Checkpoint())

// Parse turns one "city,temperature" line into a Reading. It is mapped: one
// task run per line. A malformed line fails at once: retrying cannot fix it.
var Parse = reeve.NewTask1("checkpoint.parse", func(ctx context.Context, line string) (Reading, error) {
	city, temp, ok := strings.Cut(line, ",")
	if !ok {
		return Reading{}, reeve.Fail(fmt.Sprintf("line %q: want city,temperature", line))
	}
	c, err := strconv.ParseFloat(temp, 64)
	if err != nil {
		return Reading{}, reeve.Fail(fmt.Sprintf("line %q: temperature: %v", line, err))
	}
	return Reading{City: city, TempC: c}, nil
})

// Report sums the readings up. With fail set it crashes instead, standing
// in for anything that breaks downstream of the download.
var Report = reeve.NewTask2("checkpoint.report", func(ctx context.Context, readings []Reading, fail bool) (Summary, error) {
	if fail {
		return Summary{}, errors.New("simulated crash (--param fail=true); run again without it and the download is reused")
	}
	s := Summary{Cities: len(readings)}
	for i, r := range readings {
		if i == 0 || r.TempC > s.MaxC {
			s.Warmest, s.MaxC = r.City, r.TempC
		}
	}
	reeve.Logger(ctx).Info("report written", "cities", s.Cities, "warmest", s.Warmest)
	return s, nil
})

// Flow builds the checkpoint flow. Its parameters: source, what to download
// (part of the download's cache key), and fail, which makes the report
// step crash (default false).
func Flow() *reeve.Flow {
	f := reeve.NewFlow("checkpoint",
		reeve.Description("Download once; a rerun after a failure reuses the stored download"),
		reeve.Results(DefaultResults))
	source := reeve.Param(f, "source", reeve.Default("https://example.com/temperatures.csv"))
	fail := reeve.Param(f, "fail", reeve.Default(false))
	lines := Download.Bind(f, source)
	readings := Parse.Map(f, reeve.Each(lines))
	Report.Bind(f, readings, fail)
	return f
}

func main() { reeve.Main(Flow()) }
