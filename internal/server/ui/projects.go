package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
)

// The projects page: /ui/projects.

type projectsData struct {
	Projects []projectRow
	IsAdmin  bool // the user may create projects
	Name     string
	Desc     string // the create form's fields, kept after a refusal
}

type projectRow struct {
	Project api.Project
	Flows   int
}

// projectsPage lists the projects with their flow counts and links to
// their flows, runs, secrets and schedules; an admin gets a create form.
func (u *UI) projectsPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	if name := r.URL.Query().Get("created"); name != "" {
		v.Notice = "Project " + name + " created."
	}
	return u.showProjects(r, s, v)
}

func (u *UI) showProjects(r *http.Request, s *session, v *view) (string, error) {
	ctx := r.Context()
	v.Title = "Projects"
	d := &projectsData{}
	v.Data = d
	projects, err := s.api.Projects(ctx)
	if err != nil {
		return "", err
	}
	slices.SortFunc(projects, func(a, b api.Project) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range projects {
		flows, err := s.api.Flows(ctx, p.Name, "")
		if err != nil {
			return "", err
		}
		d.Projects = append(d.Projects, projectRow{Project: p, Flows: len(flows)})
	}
	// The API has no "who am I": only an admin may list tokens, and only
	// an admin may create projects.
	_, err = s.api.Tokens(ctx)
	d.IsAdmin = err == nil
	return "projects", nil
}

// createProject creates a project; a refusal (a bad or taken name) is
// shown on the form, which keeps what was typed; a role that may not
// create projects gets the API's refusal (403).
func (u *UI) createProject(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	desc := strings.TrimSpace(r.PostForm.Get("description"))
	_, err := s.api.CreateProject(r.Context(), api.CreateProject{Name: name, Description: desc})
	if err != nil {
		code := errs.CodeOf(err)
		if code != errs.CodeInvalid && code != errs.CodeConflict {
			return "", err
		}
		page, perr := u.showProjects(r, s, v)
		if perr != nil {
			return "", err
		}
		d := v.Data.(*projectsData)
		d.Name, d.Desc = name, desc
		v.Status = statusOf(err)
		v.Error = err.Error()
		return page, nil
	}
	http.Redirect(w, r, "/ui/projects?"+url.Values{"created": {name}}.Encode(), http.StatusSeeOther)
	return "", nil
}
