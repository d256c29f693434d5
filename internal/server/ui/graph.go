package ui

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// The graph of a flow version: a layered layout of its tasks, computed
// once per graph (cached by the graph's hash), drawn as inline SVG.
//
// The layout is a small Sugiyama-style one:
//
//  1. layers by longest path from the roots (a task is one layer right of
//     its furthest upstream task), so every edge points right;
//  2. an edge that spans several layers gets a bend point in each layer
//     between, so edges go around nodes instead of through them;
//  3. the order in each layer starts as the spec's binding order and is
//     improved by barycentre sweeps (down, then up, a few times), keeping
//     the order with the fewest edge crossings;
//  4. each layer is a column, centred vertically.
//
// The layout holds no run state: a run's page draws the same layout with
// each node's state class, so a run page costs one pass over its tasks.

// Sizes of the drawing, in SVG user units (CSS pixels).
const (
	graphNodeW    = 200 // a node's width
	graphNodeH    = 40  // a task's height
	graphGroupH   = 56  // a mapped task's height (a second line of counts)
	graphLayerGap = 64  // between columns
	graphRowGap   = 14  // between nodes of a column
	graphBendH    = 10  // the height a bend point takes in its column
	graphMargin   = 8
	graphSweeps   = 4 // barycentre sweeps (down and up)
	graphMaxBends = 20000
	graphNameMax  = 24 // characters of a task's name drawn in its node
)

// graphNode is a task of a layout.
type graphNode struct {
	ID     string // the spec's task ID
	Mapped bool
	Layer  int
	X, Y   int // top left
	H      int
}

// graphEdge is an edge of a layout, from an upstream task to a task, as
// the SVG path data through its bend points.
type graphEdge struct {
	From, To string
	Path     string
}

// graphLayout is the placed graph of a flow version.
type graphLayout struct {
	Hash   string // the graph's hash (see graphHash)
	Nodes  []graphNode
	Edges  []graphEdge
	W, H   int
	Layers int
	Order  []string            // task IDs by layer, then top to bottom
	Up     map[string][]string // task ID → its upstream task IDs
	index  map[string]int      // task ID → index in Nodes
}

// node returns the node of a task ID.
func (l *graphLayout) node(id string) (*graphNode, bool) {
	i, ok := l.index[id]
	if !ok {
		return nil, false
	}
	return &l.Nodes[i], true
}

// graphInput is what a layout is computed from: the tasks in binding
// order, whether each is mapped, and the upstream task IDs of each.
type graphInput struct {
	IDs    []string
	Mapped []bool
	Up     [][]string // sorted, unique; only IDs of the graph
}

// graphInputOf reads the graph of a spec: a task's upstream tasks are the
// tasks its inputs read and the tasks it runs after.
func graphInputOf(sp *spec.Spec) graphInput {
	in := graphInput{}
	known := make(map[string]bool, len(sp.Tasks))
	for _, t := range sp.Tasks {
		known[t.ID] = true
	}
	for _, t := range sp.Tasks {
		var up []string
		for _, i := range t.Inputs {
			if i.Kind == spec.InputTask && known[i.Task] && i.Task != t.ID {
				up = append(up, i.Task)
			}
		}
		for _, a := range t.After {
			if known[a] && a != t.ID {
				up = append(up, a)
			}
		}
		slices.Sort(up)
		in.IDs = append(in.IDs, t.ID)
		in.Mapped = append(in.Mapped, t.Mapped)
		in.Up = append(in.Up, slices.Compact(up))
	}
	return in
}

// graphHash identifies a graph: its tasks in order, which are mapped, and
// their edges. Specs that differ only in other things (options,
// parameters, schedules) share a layout.
func graphHash(in graphInput) string {
	h := sha256.New()
	for i, id := range in.IDs {
		fmt.Fprintf(h, "%q %t", id, in.Mapped[i])
		for _, u := range in.Up[i] {
			fmt.Fprintf(h, " %q", u)
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// graphCache is a bounded LRU of layouts by graph hash, shared by every
// page (a layout is the same for every user who may read it).
type graphCache struct {
	mu           sync.Mutex
	max          int
	order        *list.List // front: most recently used; values are *graphLayout
	byHash       map[string]*list.Element
	hits, misses int
}

func newGraphCache(max int) *graphCache {
	return &graphCache{max: max, order: list.New(), byHash: map[string]*list.Element{}}
}

// graphLayouts caches the layouts of the flow versions pages showed.
var graphLayouts = newGraphCache(256)

// layout returns the layout of in, computing it on a miss.
func (c *graphCache) layout(in graphInput) *graphLayout {
	hash := graphHash(in)
	c.mu.Lock()
	if e, ok := c.byHash[hash]; ok {
		c.order.MoveToFront(e)
		c.hits++
		c.mu.Unlock()
		return e.Value.(*graphLayout)
	}
	c.misses++
	c.mu.Unlock()
	l := layoutGraph(in) // outside the lock: two pages may compute one layout, the same
	l.Hash = hash
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byHash[hash]; ok {
		return e.Value.(*graphLayout)
	}
	c.byHash[hash] = c.order.PushFront(l)
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.byHash, old.Value.(*graphLayout).Hash)
	}
	return l
}

// layoutGraph places a graph. It is deterministic: the same input gives
// the same layout.
func layoutGraph(in graphInput) *graphLayout {
	n := len(in.IDs)
	idx := make(map[string]int, n)
	for i, id := range in.IDs {
		idx[id] = i
	}
	// 1. Layers by longest path (Kahn's order). A cycle, which a valid
	// spec has not, is broken by placing its tasks after the rest.
	indeg := make([]int, n)
	down := make([][]int, n)
	for v, ups := range in.Up {
		for _, u := range ups {
			down[idx[u]] = append(down[idx[u]], v)
			indeg[v]++
		}
	}
	layer := make([]int, n)
	done := make([]bool, n)
	queue := make([]int, 0, n)
	for v := range n {
		if indeg[v] == 0 {
			queue = append(queue, v)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		done[u] = true
		for _, v := range down[u] {
			layer[v] = max(layer[v], layer[u]+1)
			if indeg[v]--; indeg[v] == 0 {
				queue = append(queue, v)
			}
		}
	}
	layers := 0
	for v := range n {
		if done[v] {
			layers = max(layers, layer[v]+1)
		}
	}
	for v := range n {
		if !done[v] {
			layer[v] = layers
		}
	}
	if slices.Contains(done, false) {
		layers++
	}

	// 2. Columns of vertices: tasks and bend points. A vertex ≥ n is a
	// bend point.
	type edge struct{ from, to int } // task indices
	var edges []edge
	for v, ups := range in.Up {
		for _, u := range ups {
			edges = append(edges, edge{idx[u], v})
		}
	}
	vlayer := slices.Clone(layer)
	chains := make([][]int, len(edges)) // each edge's vertices, from → bends → to
	bends := 0
	for i, e := range edges {
		chain := []int{e.from}
		if lu, lv := layer[e.from], layer[e.to]; lv > lu+1 && bends+lv-lu-1 <= graphMaxBends {
			for l := lu + 1; l < lv; l++ {
				chain = append(chain, len(vlayer))
				vlayer = append(vlayer, l)
				bends++
			}
		}
		chains[i] = append(chain, e.to)
	}
	nv := len(vlayer)
	preds := make([][]int, nv)
	succs := make([][]int, nv)
	for _, c := range chains {
		for j := 1; j < len(c); j++ {
			if vlayer[c[j]] == vlayer[c[j-1]]+1 { // a segment between neighbouring columns
				succs[c[j-1]] = append(succs[c[j-1]], c[j])
				preds[c[j]] = append(preds[c[j]], c[j-1])
			}
		}
	}
	cols := make([][]int, layers)
	for v := range nv { // tasks in binding order, then bend points by edge
		cols[vlayer[v]] = append(cols[vlayer[v]], v)
	}

	// 3. Barycentre sweeps, keeping the best order seen.
	pos := make([]int, nv)
	setPos := func() {
		for _, col := range cols {
			for i, v := range col {
				pos[v] = i
			}
		}
	}
	setPos()
	best := cloneCols(cols)
	bestX := crossings(cols, succs, pos)
	for sweep := 0; sweep < graphSweeps && bestX > 0; sweep++ {
		if sweep%2 == 0 {
			for l := 1; l < layers; l++ {
				orderBy(cols[l], preds, pos)
			}
		} else {
			for l := layers - 2; l >= 0; l-- {
				orderBy(cols[l], succs, pos)
			}
		}
		if x := crossings(cols, succs, pos); x < bestX {
			bestX = x
			best = cloneCols(cols)
		}
	}
	cols = best
	setPos()

	// 4. Coordinates: columns left to right, each centred vertically.
	height := func(v int) int {
		switch {
		case v >= n:
			return graphBendH
		case in.Mapped[v]:
			return graphGroupH
		}
		return graphNodeH
	}
	colH := make([]int, layers)
	maxH := 0
	for l, col := range cols {
		for i, v := range col {
			if i > 0 {
				colH[l] += graphRowGap
			}
			colH[l] += height(v)
		}
		maxH = max(maxH, colH[l])
	}
	x := make([]int, nv)
	y := make([]int, nv)
	for l, col := range cols {
		cy := graphMargin + (maxH-colH[l])/2
		for _, v := range col {
			x[v] = graphMargin + l*(graphNodeW+graphLayerGap)
			y[v] = cy
			cy += height(v) + graphRowGap
		}
	}
	out := &graphLayout{Layers: layers, index: idx,
		W: 2*graphMargin + max(layers*(graphNodeW+graphLayerGap)-graphLayerGap, 0),
		H: 2*graphMargin + maxH}
	out.Up = make(map[string][]string, n)
	for v := range n {
		out.Up[in.IDs[v]] = in.Up[v]
	}
	for _, col := range cols {
		for _, v := range col {
			if v < n {
				out.Order = append(out.Order, in.IDs[v])
			}
		}
	}
	for v := range n {
		out.Nodes = append(out.Nodes, graphNode{ID: in.IDs[v], Mapped: in.Mapped[v], Layer: layer[v], X: x[v], Y: y[v], H: height(v)})
	}
	for i, e := range edges {
		var b strings.Builder
		c := chains[i]
		// Out of the upstream task's right side, through the middle of
		// each bend point, into the task's left side.
		px, py := x[c[0]]+graphNodeW, y[c[0]]+height(c[0])/2
		fmt.Fprintf(&b, "M%d %d", px, py)
		for j := 1; j < len(c); j++ {
			v := c[j]
			qx, qy := x[v], y[v]+height(v)/2
			mid := (px + qx) / 2
			fmt.Fprintf(&b, "C%d %d %d %d %d %d", mid, py, mid, qy, qx, qy)
			if v >= n { // through the bend point's column
				fmt.Fprintf(&b, "L%d %d", qx+graphNodeW, qy)
				qx += graphNodeW
			}
			px, py = qx, qy
		}
		out.Edges = append(out.Edges, graphEdge{From: in.IDs[e.from], To: in.IDs[e.to], Path: b.String()})
	}
	return out
}

func cloneCols(cols [][]int) [][]int {
	out := make([][]int, len(cols))
	for i, c := range cols {
		out[i] = slices.Clone(c)
	}
	return out
}

// orderBy sorts a column by the mean position of each vertex's
// neighbours in the column beside it (a vertex without any keeps its
// place), ties broken by the current order, and updates pos.
func orderBy(col []int, nbrs [][]int, pos []int) {
	type keyed struct {
		v      int
		bc     float64
		before int
	}
	ks := make([]keyed, len(col))
	for i, v := range col {
		bc := float64(i)
		if len(nbrs[v]) > 0 {
			sum := 0
			for _, u := range nbrs[v] {
				sum += pos[u]
			}
			bc = float64(sum) / float64(len(nbrs[v]))
		}
		ks[i] = keyed{v, bc, i}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return cmp.Or(cmp.Compare(a.bc, b.bc), cmp.Compare(a.before, b.before)) })
	for i, k := range ks {
		col[i] = k.v
		pos[k.v] = i
	}
}

// crossings counts the crossings of the segments between neighbouring
// columns: the inversions of the lower ends when the segments are sorted
// by their upper ends.
func crossings(cols [][]int, succs [][]int, pos []int) int {
	total := 0
	for _, col := range cols {
		type seg struct{ a, b int }
		var segs []seg
		for _, u := range col {
			for _, v := range succs[u] {
				segs = append(segs, seg{pos[u], pos[v]})
			}
		}
		slices.SortFunc(segs, func(x, y seg) int { return cmp.Or(cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b)) })
		bs := make([]int, len(segs))
		for i, s := range segs {
			bs[i] = s.b
		}
		total += inversions(bs, make([]int, len(bs)))
	}
	return total
}

// inversions counts the pairs i < j with a[i] > a[j], sorting a (merge
// sort; tmp is scratch of the same length).
func inversions(a, tmp []int) int {
	if len(a) < 2 {
		return 0
	}
	m := len(a) / 2
	n := inversions(a[:m], tmp[:m]) + inversions(a[m:], tmp[m:])
	i, j, k := 0, m, 0
	for i < m && j < len(a) {
		if a[j] < a[i] {
			n += m - i
			tmp[k] = a[j]
			j++
		} else {
			tmp[k] = a[i]
			i++
		}
		k++
	}
	k += copy(tmp[k:], a[i:m])
	copy(tmp[k:], a[j:])
	copy(a, tmp)
	return n
}

// flowGraph reads a flow version's spec through the API and returns its
// layout (computed once per graph, then cached).
func flowGraph(ctx context.Context, s *session, versionID string) (*graphLayout, error) {
	fv, err := s.api.FlowVersion(ctx, versionID)
	if err != nil {
		return nil, err
	}
	var sp spec.Spec
	if err := json.Unmarshal(fv.Spec, &sp); err != nil {
		return nil, errs.Errorf(errs.CodeInternal, "flow version %s: its spec cannot be read: %v", versionID, err)
	}
	return graphLayouts.layout(graphInputOf(&sp)), nil
}

// flowGraphSVG draws a flow version's graph with no run states: the flow
// page shows it. Each node names its task; mapped tasks say so.
func (u *UI) flowGraphSVG(ctx context.Context, s *session, versionID string) (template.HTML, error) {
	l, err := flowGraph(ctx, s, versionID)
	if err != nil {
		return "", err
	}
	return drawGraph(l, "", nil), nil
}

// taskGroup is a mapped task's children in a run: how many in each kind,
// and when they ran.
type taskGroup struct {
	Base     string
	Parent   *api.TaskRun // the mapped task's own task run, if written
	Counts   state.Counts
	Total    int
	Kind     state.Kind // the group's summary kind (see summaryKind)
	Started  bool       // a child started (is or was running)
	Finished bool       // every child finished
}

// summaryKind is the one kind a group node shows: the parent's kind once
// it finished, else Running while a child runs, else what the children
// came to, else the parent's kind or Pending.
func (g *taskGroup) summaryKind() state.Kind {
	if g.Parent != nil && g.Parent.State.Kind.Finished() {
		return g.Parent.State.Kind
	}
	active := g.Counts[state.Running] + g.Counts[state.Retrying] + g.Counts[state.Submitted] + g.Counts[state.Cancelling]
	switch {
	case active > 0:
		return state.Running
	case g.Total > 0 && g.Finished:
		for _, k := range []state.Kind{state.Failed, state.TimedOut, state.TriggerFailed, state.Cancelled} {
			if g.Counts[k] > 0 {
				return k
			}
		}
		return state.Success
	case g.Parent != nil:
		return g.Parent.State.Kind
	}
	return state.Pending
}

// countsText says a group's size and kinds, the most frequent first:
// "5,000 · 4,980 Success · 20 Running"; limit > 0 names at most that
// many kinds and sums the rest as "N other".
func (g *taskGroup) countsText(limit int) string {
	type kc struct {
		k state.Kind
		n int
	}
	var kcs []kc
	for k, n := range g.Counts {
		if n > 0 {
			kcs = append(kcs, kc{state.Kind(k), n})
		}
	}
	slices.SortStableFunc(kcs, func(a, b kc) int { return cmp.Compare(b.n, a.n) })
	parts := []string{thousands(g.Total)}
	other := 0
	for i, c := range kcs {
		if limit > 0 && i >= limit {
			other += c.n
			continue
		}
		parts = append(parts, thousands(c.n)+" "+c.k.String())
	}
	if other > 0 {
		parts = append(parts, thousands(other)+" other")
	}
	return strings.Join(parts, " · ")
}

// thousands writes n with thousands separators: 5000 → "5,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// runTasks is a run's task runs as the run page's tabs show them: plain
// task runs by key, and mapped children grouped by their task.
type runTasks struct {
	Plain    map[string]*api.TaskRun // by key
	Groups   map[string]*taskGroup   // by the mapped task's ID
	Rows     []taskRow               // the tasks tab's rows, in order
	children []*api.TaskRun          // the mapped tasks' children
}

// taskRow is a row of the tasks tab: a task run, or a mapped task's group.
type taskRow struct {
	Key   string
	URL   string       // its task-run page
	Task  *api.TaskRun // nil for a group whose own task run was not written
	Group *taskGroup
	Text  string // the group's counts
}

// groupTasks groups a run's task runs; mapped is the set of the graph's
// mapped task IDs (a task run whose key has an index is a child too).
func groupTasks(runID string, trs []api.TaskRun, mapped map[string]bool) *runTasks {
	rt := &runTasks{Plain: map[string]*api.TaskRun{}, Groups: map[string]*taskGroup{}}
	group := func(base string) *taskGroup {
		g := rt.Groups[base]
		if g == nil {
			g = &taskGroup{Base: base, Finished: true}
			rt.Groups[base] = g
		}
		return g
	}
	for i := range trs {
		tr := &trs[i]
		base := taskBase(tr.Key)
		switch {
		case base != tr.Key: // a child
			rt.children = append(rt.children, tr)
			g := group(base)
			g.Counts[tr.State.Kind]++
			g.Total++
			g.Finished = g.Finished && tr.State.Kind.Finished()
			g.Started = g.Started || tr.State.Kind >= state.Running
		case mapped[base]:
			group(base).Parent = tr
		default:
			rt.Plain[tr.Key] = tr
		}
	}
	for _, g := range rt.Groups {
		if g.Total == 0 {
			g.Finished = false
		}
		g.Kind = g.summaryKind()
	}
	// Rows by key: a task run, or a mapped task's group in its task's place.
	keys := make([]string, 0, len(rt.Plain)+len(rt.Groups))
	for k := range rt.Plain {
		keys = append(keys, k)
	}
	for k := range rt.Groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if g := rt.Groups[k]; g != nil {
			rt.Rows = append(rt.Rows, taskRow{Key: k, URL: taskRunURL(runID, k), Task: g.Parent, Group: g, Text: g.countsText(0)})
		} else {
			rt.Rows = append(rt.Rows, taskRow{Key: k, URL: taskRunURL(runID, k), Task: rt.Plain[k]})
		}
	}
	return rt
}

// drawGraph draws a layout as SVG. With a run (runID and rt not empty),
// each node has its task run's state class and text and links to its
// task-run page; a task not started yet is drawn dashed.
func drawGraph(l *graphLayout, runID string, rt *runTasks) template.HTML {
	var b strings.Builder
	esc := html.EscapeString
	b.Grow(512 + 400*len(l.Nodes) + 80*len(l.Edges))
	fmt.Fprintf(&b, `<svg class="graph" id="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="group" aria-label="Task graph: %d tasks, %d edges">`,
		l.W, l.H, l.W, l.H, len(l.Nodes), len(l.Edges))
	b.WriteString(`<g class="edges" aria-hidden="true">`)
	for _, e := range l.Edges {
		fmt.Fprintf(&b, `<path class="edge" data-from="%s" data-to="%s" d="%s"/>`, esc(e.From), esc(e.To), e.Path)
	}
	b.WriteString(`</g><g class="nodes">`)
	for _, n := range l.Nodes {
		kind, started, label := state.Pending, false, ""
		var g *taskGroup
		if rt != nil {
			if g = rt.Groups[n.ID]; g != nil {
				kind, started = g.Kind, g.Started || g.Kind.Finished() || g.Kind == state.Running
			} else if n.Mapped {
				g = &taskGroup{Base: n.ID}
			} else if tr := rt.Plain[n.ID]; tr != nil {
				kind, started = tr.State.Kind, tr.State.Kind >= state.Running
			}
		}
		cls := "gnode"
		if rt != nil {
			cls += " gn-" + stateClass(kind)
			if !started {
				cls += " gn-notstarted"
			}
		}
		if n.Mapped {
			cls += " gn-group"
		}
		name := n.ID
		if len([]rune(name)) > graphNameMax {
			name = string([]rune(name)[:graphNameMax-1]) + "…"
		}
		if rt != nil {
			label = kind.String()
			fmt.Fprintf(&b, `<a class="%s" id="n-%s" data-task="%s" data-state="%s" href="%s" transform="translate(%d %d)">`,
				cls, esc(n.ID), esc(n.ID), label, esc(taskRunURL(runID, n.ID)), n.X, n.Y)
		} else {
			fmt.Fprintf(&b, `<g class="%s" id="n-%s" data-task="%s" transform="translate(%d %d)">`, cls, esc(n.ID), esc(n.ID), n.X, n.Y)
		}
		title := n.ID
		if rt != nil {
			title += ": " + label
		}
		if g != nil {
			title += " (mapped: " + g.countsText(0) + ")"
		} else if n.Mapped {
			title += " (mapped)"
		}
		fmt.Fprintf(&b, `<title>%s</title><rect width="%d" height="%d" rx="6"/>`, esc(title), graphNodeW, n.H)
		if rt != nil {
			fmt.Fprintf(&b, `<text class="gn-name" x="10" y="17"><tspan class="gn-icon">%s</tspan> %s</text>`, stateIcon(kind), esc(name))
		} else {
			fmt.Fprintf(&b, `<text class="gn-name" x="10" y="17">%s</text>`, esc(name))
		}
		switch {
		case g != nil:
			fmt.Fprintf(&b, `<text class="gn-state" x="10" y="33">%s</text><text class="gn-counts" x="10" y="49">%s</text>`, label, esc(g.countsText(2)))
		case rt != nil:
			fmt.Fprintf(&b, `<text class="gn-state" x="10" y="33">%s</text>`, label)
		case n.Mapped:
			b.WriteString(`<text class="gn-state" x="10" y="33">mapped</text>`)
		}
		if rt != nil {
			b.WriteString(`</a>`)
		} else {
			b.WriteString(`</g>`)
		}
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String())
}

// mapped returns the set of the layout's mapped task IDs.
func (l *graphLayout) mapped() map[string]bool {
	m := map[string]bool{}
	for _, n := range l.Nodes {
		if n.Mapped {
			m[n.ID] = true
		}
	}
	return m
}

// runTaskTabs fills the graph, timeline or tasks tab of a run's page
// (and the live stream's cursor, which every tab's page carries).
func (u *UI) runTaskTabs(ctx context.Context, s *session, d *runData, det *api.FlowRunDetail) error {
	d.Since = liveSince(det.TaskRuns)
	if d.Tab != "graph" && d.Tab != "timeline" && d.Tab != "tasks" {
		return nil
	}
	l, err := flowGraph(ctx, s, det.FlowRun.FlowVersionID)
	if err != nil {
		return fmt.Errorf("the graph of run %s: %w", det.FlowRun.ID, err)
	}
	rt := groupTasks(det.FlowRun.ID, det.TaskRuns, l.mapped())
	switch d.Tab {
	case "graph":
		d.Graph = drawGraph(l, det.FlowRun.ID, rt)
		for _, row := range rt.Rows {
			if _, ok := l.node(row.Key); !ok {
				d.TaskRows = append(d.TaskRows, row) // task runs the graph has no node for
			}
		}
	case "timeline":
		d.Timeline = timelineOf(det.FlowRun, det.History, l, rt, time.Now())
	case "tasks":
		d.TaskRows = rt.Rows
	}
	return nil
}
