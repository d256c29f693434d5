package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromePaths are where Chromium is looked for, CHROME_PATH first.
var chromePaths = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Chrome starts a headless Chromium for the test and returns a context of
// its first tab: run chromedp actions on it, or make more tabs with
// chromedp.NewContext(ctx). The browser stops when the test ends. Without
// Chromium it skips the test, or fails it when REEVE_TEST_REQUIRE names
// chrome (CI installs Debian's chromium).
//
// Do not put a timeout on the returned context's first chromedp.Run: its
// cancellation would stop the browser. Bound each step with a child
// context instead.
func Chrome(t testing.TB) context.Context {
	t.Helper()
	path := os.Getenv("CHROME_PATH")
	if path == "" {
		for _, p := range chromePaths {
			if found, err := exec.LookPath(p); err == nil {
				path = found
				break
			}
		}
	}
	if path == "" {
		Skip(t, ServiceChrome, "no Chromium found (looked for $CHROME_PATH and "+fmt.Sprint(chromePaths)+"): apt-get install chromium")
	}
	// The flags that work as root on a machine with no network beyond
	// loopback (see RECIPES.md): no sandbox, no GPU, no calls home.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		if Required(t, ServiceChrome) {
			t.Fatalf("Chromium at %s does not start: %v", path, err)
		}
		Skip(t, ServiceChrome, fmt.Sprintf("Chromium at %s does not start: %v", path, err))
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}
