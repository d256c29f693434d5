package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestProjectsPage: the projects page lists each project with its flow
// count and links to its flows, runs, schedules and secrets; an admin
// creates a project (a bad or taken name is refused on the form, which
// keeps what was typed); a developer sees no form and a forged one gets
// the API's refusal.
func TestProjectsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	e.flow("report", "")
	dashFlowIn(t, e, "ops", "nightly", "")

	u := e.user()
	u.signIn(e.admin)
	p := u.mustGet("/ui/projects")
	p.contains(t, `href="/ui/projects" aria-current="page"`, `id="create-project"`)
	for name, flows := range map[string]string{"default": "2", "ops": "1"} {
		row := regexp.MustCompile(`(?s)<tr data-project="` + name + `">.*?</tr>`).FindString(p.body)
		for _, want := range []string{`<td class="flow-count">` + flows + `</td>`, `href="/ui/flows?project=` + name + `"`, `href="/ui/runs?project=` + name + `"`,
			`href="/ui/schedules?project=` + name + `"`, `href="/ui/secrets?project=` + name + `"`, `href="/ui/dashboard?project=` + name + `"`} {
			if !strings.Contains(row, want) {
				t.Errorf("project %s's row lacks %q:\n%s", name, want, row)
			}
		}
	}
	// The links lead to pages filtered by the project.
	u.mustGet("/ui/flows?project=ops").contains(t, `data-flow="nightly"`)

	csrf := p.csrf(t)
	p = u.post("/ui/projects", url.Values{"csrf": {csrf}, "name": {"data-eng"}, "description": {"the data team"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create = %d:\n%s", p.status, p.body)
	}
	u.mustGet(p.location()).contains(t, "Project data-eng created.", `<tr data-project="data-eng">`, "the data team")

	for name, status := range map[string]int{"Bad Name": http.StatusBadRequest, "ops": http.StatusConflict} {
		p := u.post("/ui/projects", url.Values{"csrf": {csrf}, "name": {name}, "description": {"kept"}})
		if p.status != status || !strings.Contains(p.body, `id="error"`) {
			t.Errorf("create %q = %d, want %d with the API's message:\n%s", name, p.status, status, p.body)
		}
		p.contains(t, `id="project-name" name="name" value="`+name+`"`, `value="kept"`)
	}

	dev := e.user()
	dev.signIn(e.token("developer"))
	dp := dev.mustGet("/ui/projects")
	dp.contains(t, `<tr data-project="ops">`)
	dp.lacks(t, `id="create-project"`)
	fp := dev.post("/ui/projects", url.Values{"csrf": {dp.csrf(t)}, "name": {"sneaky"}})
	if fp.status != http.StatusForbidden || !strings.Contains(fp.body, "a developer token may not POST /api/v1/projects") {
		t.Errorf("a developer's forged create = %d, want 403 with the API's message:\n%s", fp.status, fp.body)
	}
}
