package ui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/reevehq/reeve/internal/testenv"
)

// keysSelected is the data-run of the runs list's selected row ("" for none).
func keysSelected(b *browser) string {
	b.t.Helper()
	return evalIn[string](b, `(() => { const r = document.querySelector("tr.kb-selected"); return r ? (r.getAttribute("data-run") || r.getAttribute("data-agent") || "?") : ""; })()`)
}

// TestBrowserKeyboard: on the runs list j and k move a visible selection
// through the rows (not past the ends), Enter opens the selected run;
// keys typed in a field do nothing; ? opens the shortcuts dialog, which
// Esc and its Close button close.
func TestBrowserKeyboard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	first := e.run("etl", "")
	second := e.run("etl", "")
	third := e.run("etl", "")
	b := &browser{t: t, ctx: ctx}
	a11ySignIn(b, e.url, e.admin)
	b.do("see the runs", chromedp.WaitVisible(chromedp.CSS("#runs")))
	order := evalIn[string](b, `[...document.querySelectorAll("#runs tr[data-run]")].map(r => r.dataset.run).join(",")`)
	if order != third.ID+","+second.ID+","+first.ID {
		t.Fatalf("the runs list shows %s, want newest first", order)
	}

	steps := []struct {
		key, want string
	}{
		{"j", third.ID}, {"j", second.ID}, {"j", first.ID}, {"j", first.ID}, // stays on the last row
		{"k", second.ID}, {"k", third.ID}, {"k", third.ID}, // stays on the first
		{"j", second.ID},
	}
	for i, s := range steps {
		b.do("press "+s.key, chromedp.KeyEvent(s.key))
		if got := keysSelected(b); got != s.want {
			t.Fatalf("after key %d (%s) the selected row is %q, want %q", i+1, s.key, got, s.want)
		}
	}
	if n := b.count("tr.kb-selected"); n != 1 {
		t.Errorf("%d rows are selected, want 1", n)
	}
	if cur := evalIn[string](b, `document.querySelector("tr.kb-selected").getAttribute("aria-current")`); cur != "true" {
		t.Errorf("the selected row's aria-current is %q, want true", cur)
	}

	// In a field, j is typed, not a move; "/" goes to the filters.
	b.do("press /", chromedp.KeyEvent("/"))
	if id := evalIn[string](b, `document.activeElement.id`); !strings.HasPrefix(id, "f-") {
		t.Errorf("/ focused %q, want a filter field", id)
	}
	b.do("press j in the field", chromedp.KeyEvent("j"))
	if got := keysSelected(b); got != second.ID {
		t.Errorf("j in a field moved the selection to %q", got)
	}
	evalIn[chromedp.Void](b, `document.activeElement.blur()`)

	// ? opens the dialog; Esc closes it; its Close button too.
	open := func() bool { return evalIn[bool](b, `document.getElementById("shortcuts").open`) }
	b.do("press ?", chromedp.KeyEvent("?"))
	if !open() {
		t.Fatal("? did not open the shortcuts dialog")
	}
	if s := b.text("#shortcuts"); !strings.Contains(s, "Select the next row") || !strings.Contains(s, "Open the selected row") {
		t.Errorf("the dialog reads %q", s)
	}
	b.do("press j in the dialog", chromedp.KeyEvent("j"))
	if got := keysSelected(b); got != second.ID {
		t.Errorf("j with the dialog open moved the selection to %q", got)
	}
	b.do("press Esc", chromedp.KeyEvent(kb.Escape))
	if open() {
		t.Error("Esc did not close the dialog")
	}
	b.do("open it from the footer", chromedp.Click(chromedp.CSS("#shortcuts-open")))
	if !open() {
		t.Fatal("the footer button did not open the dialog")
	}
	b.do("close it", chromedp.Click(chromedp.CSS("#shortcuts-close")))
	if open() {
		t.Error("Close did not close the dialog")
	}

	// Enter opens the selected run (with the focus on the page, not on
	// the footer button the dialog gave it back to).
	evalIn[chromedp.Void](b, `document.activeElement.blur()`)
	b.do("press Enter", chromedp.KeyEvent(kb.Enter))
	b.at("the selected run's page", func(s string) bool { return s == "/ui/runs/"+second.ID })
}
