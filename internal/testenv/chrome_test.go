package testenv_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/internal/testenv"
)

// TestChromeRendersAPage: the browser loads a page from a loopback server
// and runs its script.
func TestChromeRendersAPage(t *testing.T) {
	ctx := testenv.Chrome(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>t</title><p id="out">static</p><script>document.getElementById("out").textContent = "from script"</script>`)
	}))
	t.Cleanup(srv.Close)
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(step, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(step, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if text != "from script" {
		t.Errorf("#out = %q, want the script's text", text)
	}
}
