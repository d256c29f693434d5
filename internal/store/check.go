package store

// Dialect-independent checks and encodings shared by the SQLite and
// PostgreSQL stores: they validate and normalise records before they are
// written, so both stores accept, reject and report the same inputs alike.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adhocore/gronx"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
)

// invalid returns an invalid-request error.
func invalid(format string, args ...any) error {
	return reeve.Errorf(reeve.CodeInvalid, format, args...)
}

// Micro returns t in UTC, truncated to microseconds, the precision both
// stores keep; the zero time stays zero.
func Micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// EncodeState normalises st as the stores keep it (times in UTC to the
// microsecond; a zero Time becomes now(), which is called only then) and
// returns it with its JSON text. A state of an unknown kind is ErrInvalid.
func EncodeState(st state.State, now func() time.Time) (state.State, string, error) {
	if st.Kind >= state.Kind(len(state.Kinds())) {
		return st, "", invalid("state kind %d is not a kind of state", uint8(st.Kind))
	}
	if st.Time.IsZero() {
		st.Time = now()
	}
	st.Time = Micro(st.Time)
	st.StartAt = Micro(st.StartAt)
	b, err := json.Marshal(st)
	if err != nil {
		return st, "", invalid("state %s: %v", st.Kind, err)
	}
	return st, string(b), nil
}

// DecodeState reads a state as EncodeState wrote it.
func DecodeState(js string) (state.State, error) {
	var st state.State
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		return state.State{}, fmt.Errorf("decode state: %w", err)
	}
	return st, nil
}

// IsZeroState reports whether no state was given.
func IsZeroState(st state.State) bool {
	return st.Kind == state.Pending && st.Message == "" && st.Time.IsZero() && st.StartAt.IsZero() &&
		st.Attempt == 0 && st.Result == nil && st.Counts == nil
}

// CompactParams checks that a flow run's params, if any, is a JSON object
// and returns it compacted; ok is false when there are none. Parameters
// that are not a JSON object are ErrInvalid.
func CompactParams(params json.RawMessage) (text string, ok bool, err error) {
	return CompactObject("the flow run's parameters", params)
}

// RegistrationColumns is a Registration's columns as the stores keep them:
// JSON texts of its storage, labels, run configuration and (compacted) spec.
type RegistrationColumns struct {
	Storage, Labels, RunConfig, Spec string
}

// CheckRegistration checks a flow registration (a project and flow name, a
// spec hash, a JSON spec; else ErrInvalid) and returns its columns.
func CheckRegistration(r Registration) (RegistrationColumns, error) {
	if r.Project == "" || r.Flow == "" {
		return RegistrationColumns{}, invalid("a flow registration needs a project and a flow name")
	}
	if r.SpecHash == "" {
		return RegistrationColumns{}, invalid("flow %q: a flow registration needs the spec's hash", r.Flow)
	}
	var spec bytes.Buffer
	if len(r.Spec) == 0 || json.Compact(&spec, r.Spec) != nil {
		return RegistrationColumns{}, invalid("flow %q: the spec is not a JSON document", r.Flow)
	}
	storage, err := json.Marshal(r.Storage)
	if err != nil {
		return RegistrationColumns{}, invalid("flow %q: storage: %v", r.Flow, err)
	}
	labels, err := EncodeLabels(r.Labels)
	if err != nil {
		return RegistrationColumns{}, invalid("flow %q: labels: %v", r.Flow, err)
	}
	runConfig, err := json.Marshal(r.RunConfig)
	if err != nil {
		return RegistrationColumns{}, invalid("flow %q: run config: %v", r.Flow, err)
	}
	return RegistrationColumns{Storage: string(storage), Labels: labels, RunConfig: string(runConfig), Spec: spec.String()}, nil
}

// EncodeLabels returns labels as a JSON array, [] for none.
func EncodeLabels(labels []string) (string, error) {
	if labels == nil {
		labels = []string{}
	}
	b, err := json.Marshal(labels)
	return string(b), err
}

// RunCursor is the position after the last row of a page of flow runs. Its
// text form is the same in both stores.
type RunCursor struct {
	Created int64 // microseconds since the Unix epoch
	ID      string
}

// EncodeCursor returns the text form of c.
func EncodeCursor(c RunCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Created, 10) + "," + c.ID))
}

// DecodeCursor parses a cursor EncodeCursor returned; anything else is
// ErrInvalid.
func DecodeCursor(s string) (RunCursor, error) {
	bad := invalid("malformed cursor %q: pass the cursor of the previous page unchanged, or none for the first page", s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return RunCursor{}, bad
	}
	created, id, ok := strings.Cut(string(b), ",")
	if !ok || id == "" {
		return RunCursor{}, bad
	}
	n, err := strconv.ParseInt(created, 10, 64)
	if err != nil {
		return RunCursor{}, bad
	}
	return RunCursor{Created: n, ID: id}, nil
}

// CheckTaskRunWrite checks write i of a batch given to WriteTaskRunStates
// (a task run key, an Expect of 0 or more; else ErrInvalid) and encodes its
// state as EncodeState does, calling now only for a state without a time.
func CheckTaskRunWrite(i int, w TaskRunWrite, now func() time.Time) (state.State, string, error) {
	if w.Key == "" {
		return state.State{}, "", invalid("write %d has no task run key", i)
	}
	if w.Expect < 0 {
		return state.State{}, "", invalid("write %d to task run %q expects version %d: a version is 0 (create) or more", i, w.Key, w.Expect)
	}
	st, js, err := EncodeState(w.State, now)
	if err != nil {
		return state.State{}, "", fmt.Errorf("task run %q: %w", w.Key, err)
	}
	return st, js, nil
}

// CompactObject checks that doc, if any, is a JSON object and returns it
// compacted; ok is false when there is none. what names the document in
// the error: anything else is ErrInvalid.
func CompactObject(what string, doc json.RawMessage) (text string, ok bool, err error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return "", false, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil || buf.Bytes()[0] != '{' {
		return "", false, invalid("%s are not a JSON object: give an object such as {\"day\": \"2026-03-14\"}", what)
	}
	return buf.String(), true, nil
}

// MaxSecretName is the longest secret name, in bytes.
const MaxSecretName = 128

// CheckSecretName checks a secret's name: an identifier
// ([A-Za-z_][A-Za-z0-9_]*) of at most MaxSecretName bytes, else ErrInvalid.
func CheckSecretName(name string) error {
	if name == "" {
		return invalid("a secret needs a name")
	}
	if len(name) > MaxSecretName {
		return invalid("secret name %.20q... is %d bytes long: use at most %d", name, len(name), MaxSecretName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return invalid("secret name %q is not valid: use letters, digits and '_', not starting with a digit", name)
	}
	return nil
}

// CheckToken checks a token to create: a hash, a known role, a flow run for
// a run token and none for any other role; else ErrInvalid.
func CheckToken(t Token) error {
	if t.Hash == "" {
		return invalid("token %q has no hash: the store keeps the hash of the token's secret", t.Name)
	}
	switch t.Role {
	case RoleAdmin, RoleDeveloper, RoleAgent:
		if t.FlowRunID != "" {
			return invalid("token %q has role %q and flow run %q: only a %q token belongs to a flow run",
				t.Name, t.Role, t.FlowRunID, RoleRun)
		}
	case RoleRun:
		if t.FlowRunID == "" {
			return invalid("run token %q has no flow run: a %q token is for one flow run", t.Name, RoleRun)
		}
	default:
		return invalid("token %q has role %q: use one of %q, %q, %q, %q",
			t.Name, t.Role, RoleAdmin, RoleDeveloper, RoleAgent, RoleRun)
	}
	return nil
}

// CheckSchedule checks a schedule to create and returns it normalised, with
// its params compacted (ok false when there are none). Exactly one of Cron
// and Interval is set; Cron is read by github.com/adhocore/gronx; Interval
// is positive and kept to the microsecond; Timezone is "" or an IANA name;
// Params is a JSON object or empty; else ErrInvalid. A zero Anchor of an
// interval schedule becomes now(), which is called only then.
func CheckSchedule(sc Schedule, now func() time.Time) (_ Schedule, params string, ok bool, err error) {
	if sc.FlowID == "" {
		return sc, "", false, invalid("a schedule needs a flow ID")
	}
	switch {
	case sc.Cron == "" && sc.Interval == 0:
		return sc, "", false, invalid("a schedule of flow %q needs a cron expression or an interval: set one", sc.FlowID)
	case sc.Cron != "" && sc.Interval != 0:
		return sc, "", false, invalid("a schedule of flow %q has both cron %q and interval %v: set only one", sc.FlowID, sc.Cron, sc.Interval)
	case sc.Cron != "" && !gronx.IsValid(sc.Cron):
		return sc, "", false, invalid("schedule cron %q is not valid: use five fields (minute hour day-of-month month day-of-week) like \"30 2 * * *\", or a descriptor like @daily", sc.Cron)
	case sc.Interval < 0:
		return sc, "", false, invalid("schedule interval %v is negative: use a positive duration such as 1h", sc.Interval)
	}
	if sc.Interval != 0 {
		sc.Interval = sc.Interval.Truncate(time.Microsecond)
		if sc.Interval == 0 {
			return sc, "", false, invalid("schedule interval is below a microsecond: use a positive duration such as 1h")
		}
		if sc.Anchor.IsZero() {
			sc.Anchor = now()
		}
	}
	if tz := sc.Timezone; tz != "" {
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
			return sc, "", false, invalid("schedule timezone %q is not known: use an IANA name like \"Europe/Paris\", or leave it empty for UTC", tz)
		}
	}
	sc.Anchor = Micro(sc.Anchor)
	params, ok, err = CompactObject("the schedule's parameters", sc.Params)
	if err != nil {
		return sc, "", false, err
	}
	sc.Params = nil
	if ok {
		sc.Params = json.RawMessage(params)
	}
	return sc, params, ok, nil
}

// CheckAgent checks an agent's registration (a name, no empty storage
// kind; else ErrInvalid) and returns its labels and storage kinds as
// stored, JSON arrays. Which kinds exist is the server's to check.
func CheckAgent(name string, labels, storageKinds []string) (labelsJSON, kindsJSON string, err error) {
	if name == "" {
		return "", "", invalid("an agent needs a name")
	}
	if slices.Contains(storageKinds, "") {
		return "", "", invalid("agent %q: an empty storage kind: name the kinds it runs, or none for every kind", name)
	}
	if labelsJSON, err = EncodeLabels(labels); err != nil {
		return "", "", invalid("agent %q: labels: %v", name, err)
	}
	if kindsJSON, err = EncodeLabels(storageKinds); err != nil {
		return "", "", invalid("agent %q: storage kinds: %v", name, err)
	}
	return labelsJSON, kindsJSON, nil
}

// ClaimState is the state a flow run moves to when the agent named agent
// claims it, encoded as EncodeState does.
func ClaimState(agent string, now func() time.Time) (state.State, string, error) {
	return EncodeState(state.State{Kind: state.Submitted, Message: fmt.Sprintf("claimed by agent %q", agent)}, now)
}

// CheckScheduledRun checks a flow run that schedule scheduleID (of flow
// scheduleFlow, paused or not) makes of flow version versionID (of flow
// flowID, archived or not): the schedule must be of the run's flow (else
// ErrInvalid), not paused and the version not archived (else ErrConflict).
func CheckScheduledRun(scheduleID, scheduleFlow string, paused bool, flowID, versionID string, archived bool) error {
	switch {
	case scheduleFlow != flowID:
		return invalid("schedule %q is a schedule of flow %q, not of flow %q", scheduleID, scheduleFlow, flowID)
	case paused:
		return reeve.Errorf(reeve.CodeConflict, "schedule %q is paused: it makes no runs until it is resumed", scheduleID)
	case archived:
		return reeve.Errorf(reeve.CodeConflict,
			"flow version %q is archived: schedule %q makes runs of its flow's newest version only", versionID, scheduleID)
	}
	return nil
}

// CheckAttempt checks the attempt a writer of flow run id gives against the
// run's current attempt: 0 writes unfenced; any other attempt but current
// is ErrConflict (see AttemptConflict).
func CheckAttempt(id string, attempt, current int) error {
	if attempt == 0 || attempt == current {
		return nil
	}
	return AttemptConflict(id, attempt, current)
}

// CheckWriter is CheckAttempt for a task-run writer, given also the run's
// state kind: a claimed run that is back in Scheduled or Pending (its
// runner was declared lost, a long retry was handed back, it was
// restarted) waits for its next claim, and no runner of its current
// attempt may write to it meanwhile.
func CheckWriter(id string, attempt, current int, kind state.Kind) error {
	if err := CheckAttempt(id, attempt, current); err != nil || attempt == 0 {
		return err
	}
	if kind == state.Scheduled || kind == state.Pending {
		return reeve.Errorf(reeve.CodeConflict,
			"flow run %q was re-queued (%s): the runner of attempt %d must stop", id, kind, attempt)
	}
	return nil
}

// AttemptConflict is the ErrConflict of a writer or heartbeat of attempt
// of flow run id, which is at attempt current: the writer was superseded,
// or never was the run's current attempt.
func AttemptConflict(id string, attempt, current int) error {
	if 0 < attempt && attempt < current {
		return reeve.Errorf(reeve.CodeConflict,
			"attempt %d of flow run %q was superseded by attempt %d: its runner must stop", attempt, id, current)
	}
	return reeve.Errorf(reeve.CodeConflict,
		"flow run %q is at attempt %d, not %d: only the runner of its current attempt may write to it", id, current, attempt)
}

// Recovery is what RecoverFlowRun does to a flow run, worked out by
// PlanRecovery: the state the run moves to, encoded as EncodeState does,
// and whether that re-queues it. (Its Running task runs move to
// LostTaskState.)
type Recovery struct {
	Run     state.State
	RunJSON string
	Requeue bool // the run goes back to Scheduled: ScheduledAt now, AgentID "", Recoveries +1
}

// PlanRecovery checks that a flow run (id, in state kind at version, with
// recoveries re-queues so far) can take the lost-run path that a
// RecoverFlowRun expecting version expect asks for (else ErrConflict), and
// returns what it does at time now. A negative maxRecoveries counts as 0.
func PlanRecovery(id string, kind state.Kind, version, expect int64, recoveries int, reason string, maxRecoveries int, now time.Time) (Recovery, error) {
	if version != expect {
		return Recovery{}, reeve.Errorf(reeve.CodeConflict,
			"flow run %q is at state version %d, not %d: it changed since it was read; reload it and retry", id, version, expect)
	}
	switch kind {
	case state.Submitted, state.Running, state.Cancelling:
	default:
		return Recovery{}, reeve.Errorf(reeve.CodeConflict,
			"flow run %q is %s: only a Submitted, Running or Cancelling run has a runner to lose", id, kind)
	}
	maxRecoveries = max(maxRecoveries, 0)
	var (
		st      state.State
		requeue bool
	)
	switch {
	case kind == state.Cancelling:
		st = state.State{Kind: state.Cancelled, Message: reason}
	case recoveries < maxRecoveries:
		st = state.State{Kind: state.Scheduled,
			Message: fmt.Sprintf("re-queued (recovery %d of %d): %s", recoveries+1, maxRecoveries, reason)}
		requeue = true
	default:
		st = state.State{Kind: state.Failed, Message: fmt.Sprintf("%s; gave up after %d recoveries", reason, maxRecoveries)}
	}
	st.Time = now
	st, js, err := EncodeState(st, func() time.Time { return now })
	if err != nil {
		return Recovery{}, err
	}
	return Recovery{Run: st, RunJSON: js, Requeue: requeue}, nil
}

// RecoveryConflict is the ErrConflict of a RecoverFlowRun expecting
// version expect of flow run id, which moved on meanwhile.
func RecoveryConflict(id string, expect int64) error {
	return reeve.Errorf(reeve.CodeConflict,
		"flow run %q is no longer at state version %d: it changed since it was read; reload it and retry", id, expect)
}

// LostTaskState is the state RecoverFlowRun moves a Running task run (in
// state running) to at time now: Failed, "runner lost: " + reason, in the
// same attempt, encoded as EncodeState does.
func LostTaskState(running state.State, reason string, now time.Time) (state.State, string, error) {
	return EncodeState(state.State{Kind: state.Failed, Message: "runner lost: " + reason, Time: now, Attempt: running.Attempt},
		func() time.Time { return now })
}

// MaxCountTaskRuns is how many flow runs CountTaskRuns counts at once: a
// page of runs at most.
const MaxCountTaskRuns = 1000

// CheckCountTaskRuns checks the flow run IDs given to CountTaskRuns.
func CheckCountTaskRuns(flowRunIDs []string) error {
	if len(flowRunIDs) > MaxCountTaskRuns {
		return reeve.Errorf(reeve.CodeInvalid, "%d flow runs to count task runs of: count at most %d at once (a page)",
			len(flowRunIDs), MaxCountTaskRuns)
	}
	return nil
}
