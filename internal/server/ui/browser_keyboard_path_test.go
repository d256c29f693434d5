package ui_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// TestBrowserKeyboardOnlyRetry: with the keyboard alone, a user signs in,
// moves down the runs list with j to the failed run, opens it with
// Enter, tabs to Retry from failed and presses Enter: the run is
// scheduled again. No mouse click, no navigation by URL after sign-in.
func TestBrowserKeyboardOnlyRetry(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	f := &triageFlow{name: "kbpath"}
	reg, err := e.api.RegisterFlow(context.Background(), api.RegisterFlow{Spec: f.spec(), Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}})
	if err != nil {
		t.Fatal(err)
	}
	failed := e.run("kbpath", "")
	if k := f.execute(e, reg, failed.ID); k != state.Failed {
		t.Fatalf("the run ended %s, want Failed", k)
	}
	// Two newer runs above it in the list: j must move past them.
	e.setState(e.run("kbpath", "").ID, state.Success, "")
	e.setState(e.run("kbpath", "").ID, state.Success, "")

	b := &browser{t: t, ctx: ctx}
	key := func(what, k string) { b.do(what, chromedp.KeyEvent(k)) }
	b.do("open the sign-in page", chromedp.Navigate(e.url+"/ui/login?next=/ui/runs"), chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.Focus(chromedp.CSS("#token")))
	key("type the token", e.admin)
	key("press Enter", kb.Enter)
	b.at("the runs list", func(s string) bool { return s == "/ui/runs" })
	b.do("wait for the list", chromedp.WaitVisible(chromedp.CSS("#runs")))

	for range 3 {
		key("press j", "j")
	}
	if got := evalIn[string](b, `(function () { var a = document.querySelector("main tr.kb-selected a"); return a ? a.getAttribute("href") : ""; })()`); got != "/ui/runs/"+failed.ID {
		t.Fatalf("after j j j the selected row links to %q, want the failed run /ui/runs/%s", got, failed.ID)
	}
	key("press Enter", kb.Enter)
	b.at("the failed run's page", func(s string) bool { return s == "/ui/runs/"+failed.ID })
	b.do("wait for the page", chromedp.WaitVisible(chromedp.CSS("#retry")))

	// The confirmation the form asks for is answered yes, as Enter on the
	// browser's own dialog would.
	evalIn[chromedp.Void](b, `window.confirm = function () { return true; }`)
	found := false
	for range 80 {
		key("press Tab", kb.Tab)
		if evalIn[string](b, `document.activeElement ? document.activeElement.id : ""`) == "retry" {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("Tab never reached the Retry from failed button")
	}
	if !evalIn[bool](b, `(function () { var el = document.activeElement; var st = getComputedStyle(el); return st.outlineStyle !== "none" || st.boxShadow !== "none"; })()`) {
		t.Error("the focused Retry button shows no focus ring")
	}
	key("press Enter on Retry", kb.Enter)
	b.waitJS("the run is Scheduled again", `!!document.querySelector('#run-state [data-state="Scheduled"]')`)
	if k := e.state(failed.ID); k != state.Scheduled {
		t.Fatalf("the retried run is %s, want Scheduled", k)
	}
}
