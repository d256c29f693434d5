package ui

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// prefs are a user's display preferences, kept in the reeve_prefs cookie.
type prefs struct {
	Theme string // light, dark or system (the default)
	Zone  string // local (the default), UTC or an IANA zone name
	// Browser is the browser's own IANA zone, sent by the preferences
	// page's script; "local" means it when it is set, else the server's.
	Browser string
	Clock   string // 24 (the default) or 12
}

var themes = []string{"system", "light", "dark"}

// readPrefs reads the request's preferences; anything unknown is the
// default.
func readPrefs(r *http.Request) prefs {
	p := prefs{Theme: "system", Zone: "local", Clock: "24"}
	c, err := r.Cookie(prefsCookie)
	if err != nil {
		return p
	}
	q, err := url.ParseQuery(c.Value)
	if err != nil {
		return p
	}
	if t := q.Get("theme"); contains(themes, t) {
		p.Theme = t
	}
	if z := q.Get("tz"); z != "" && validZone(z) {
		p.Zone = z
	}
	if z := q.Get("browser"); z != "" && z != "local" && validZone(z) {
		p.Browser = z
	}
	if q.Get("clock") == "12" {
		p.Clock = "12"
	}
	return p
}

// encode is the cookie value of p.
func (p prefs) encode() string {
	q := url.Values{}
	q.Set("theme", p.Theme)
	q.Set("tz", p.Zone)
	if p.Browser != "" {
		q.Set("browser", p.Browser)
	}
	q.Set("clock", p.Clock)
	return q.Encode()
}

func validZone(z string) bool {
	if z == "local" {
		return true
	}
	if len(z) > 64 || strings.ContainsAny(z, " \\") || strings.Contains(z, "..") {
		return false
	}
	_, err := time.LoadLocation(z)
	return err == nil && z != "Local"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// location is the zone timestamps are shown in.
func (p prefs) location() *time.Location {
	z := p.Zone
	if z == "local" {
		z = p.Browser
	}
	if z == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return time.Local
	}
	return loc
}

func (p prefs) formatter() formatter {
	return formatter{loc: p.location(), clock12: p.Clock == "12"}
}

// formatter formats times for a user's preferences.
type formatter struct {
	loc     *time.Location
	clock12 bool
}

// Time formats t with its zone's name, e.g. "2026-11-26 14:03:05 CET";
// the zero time is "—".
func (f formatter) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	loc := f.loc
	if loc == nil {
		loc = time.Local
	}
	layout := "2006-01-02 15:04:05 MST"
	if f.clock12 {
		layout = "2006-01-02 3:04:05 PM MST"
	}
	return t.In(loc).Format(layout)
}

// ISO is t in RFC 3339, for <time datetime>.
func (f formatter) ISO(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Zone is the name of the zone times are shown in.
func (f formatter) Zone() string {
	if f.loc == nil {
		return time.Local.String()
	}
	return f.loc.String()
}

// duration formats d for people: "850ms", "12s", "3m 05s", "2h 03m".
func duration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

// stateLook is how a state kind is shown: an icon, a colour class.
var stateIcons = map[state.Kind]string{
	state.Pending:       "○",
	state.Scheduled:     "◷",
	state.Submitted:     "◔",
	state.Running:       "▶",
	state.Retrying:      "↻",
	state.Cancelling:    "⊘",
	state.Success:       "✓",
	state.Failed:        "✕",
	state.TimedOut:      "⌛",
	state.TriggerFailed: "⚠",
	state.Skipped:       "↷",
	state.Cached:        "✓",
	state.Mapped:        "✓",
	state.Cancelled:     "⊘",
}

// stateClass groups kinds into the colours of the badges.
func stateClass(k state.Kind) string {
	switch {
	case k.Successful():
		return "ok"
	case k.Failure():
		return "bad"
	case k == state.Running || k == state.Submitted || k == state.Retrying || k == state.Cancelling:
		return "active"
	case k == state.Cancelled || k == state.Skipped:
		return "muted"
	}
	return "waiting"
}

// stateBadge renders a state as icon, text and colour.
func stateBadge(k state.Kind) template.HTML {
	icon := stateIcons[k]
	if icon == "" {
		icon = "•"
	}
	return template.HTML(fmt.Sprintf(`<span class="state state-%s" data-state="%s"><span class="state-icon" aria-hidden="true">%s</span> %s</span>`,
		stateClass(k), template.HTMLEscapeString(k.String()), icon, template.HTMLEscapeString(k.String())))
}

var funcs = template.FuncMap{
	"state":    stateBadge,
	"duration": duration,
	"runTick":  runTick,
}

type prefsData struct {
	Themes []string
	Zones  []string
}

func (u *UI) preferencesPage(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	v.Title = "Preferences"
	if r.URL.Query().Get("saved") == "1" {
		v.Notice = "Preferences saved."
	}
	v.Data = prefsData{Themes: themes, Zones: []string{"local", "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"}}
	return "preferences", nil
}

func (u *UI) savePreferences(w http.ResponseWriter, r *http.Request, s *session, v *view) (string, error) {
	f := r.PostForm
	p := readPrefs(r)
	theme, zone, clock := f.Get("theme"), strings.TrimSpace(f.Get("tz")), f.Get("clock")
	if other := strings.TrimSpace(f.Get("tz_other")); other != "" {
		zone = other
	}
	switch {
	case !contains(themes, theme):
		return "", errs.Errorf(errs.CodeInvalid, "theme %q is not one of %s", theme, strings.Join(themes, ", "))
	case zone == "" || !validZone(zone):
		return "", errs.Errorf(errs.CodeInvalid, "time zone %q is not local, UTC or an IANA zone name such as Europe/Paris", zone)
	case clock != "12" && clock != "24":
		return "", errs.Errorf(errs.CodeInvalid, "clock %q is not 12 or 24", clock)
	}
	p.Theme, p.Zone, p.Clock = theme, zone, clock
	if b := strings.TrimSpace(f.Get("browser_tz")); b != "" && validZone(b) && b != "local" {
		p.Browser = b
	}
	http.SetCookie(w, &http.Cookie{Name: prefsCookie, Value: p.encode(), Path: "/ui", MaxAge: 400 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)})
	http.Redirect(w, r, "/ui/preferences?saved=1", http.StatusSeeOther)
	return "", nil
}
