package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// assets are the templates, the style sheet and the script: embedded,
// so the UI needs nothing from outside. An embed.FS is read-only.
//
//lint:table
//go:embed templates/*.html static/*
var assets embed.FS

// Server serves the pages and the REST API of the applications of a
// source: the live driver's (NewLive) or a directory of event logs
// (NewHistory).
type Server struct {
	opts Options
	src  source
	live bool
	tmpl *template.Template
	mux  *http.ServeMux
	http *http.Server
	lis  net.Listener
	done chan struct{}
}

func newServer(opts Options, src source, live bool) (*Server, error) {
	tmpl, err := template.New("ui").Funcs(templateFuncs()).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	s := &Server{opts: opts, src: src, live: live, tmpl: tmpl, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /app/{app}/{$}", s.page("jobs", s.jobsPage))
	s.mux.HandleFunc("GET /app/{app}/job/{job}/{$}", s.page("job", s.jobPage))
	s.mux.HandleFunc("GET /app/{app}/stages/{$}", s.page("stages", s.stagesPage))
	s.mux.HandleFunc("GET /app/{app}/stage/{stage}/{$}", s.page("stage", s.stagePage))
	s.mux.HandleFunc("GET /app/{app}/stage/{stage}/{attempt}/{$}", s.page("stage", s.stagePage))
	s.mux.HandleFunc("GET /app/{app}/workers/{$}", s.page("workers", s.simplePage(func(m *model) any { return m.workerList() })))
	s.mux.HandleFunc("GET /app/{app}/nodes/{$}", s.page("nodes", s.simplePage(func(m *model) any { return m.nodeList() })))
	s.mux.HandleFunc("GET /app/{app}/storage/{$}", s.page("storage", s.simplePage(func(m *model) any {
		return storagePage{RDDs: m.storage(), Checkpoints: m.checkpointList()}
	})))
	s.mux.HandleFunc("GET /app/{app}/environment/{$}", s.page("environment", s.simplePage(func(m *model) any { return m.environment() })))
	s.apiRoutes()
	if s.opts.Registry != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{Registry: s.opts.Registry}))
	}
}

// Handler is the UI as an http.Handler, for a caller that serves it
// itself.
func (s *Server) Handler() http.Handler { return s.mux }

// Listen serves the UI on addr ("host:port"; port 0 picks a free one), a
// loopback address: one beyond it is refused (the UI authenticates no
// one).
// With tryNext, a port that is taken is followed by the next ones, up to
// 16 of them, as Spark's UI does, and then by any free port; the address
// chosen is Addr.
func (s *Server) Listen(addr string, tryNext bool) error {
	lis, err := listen(addr, tryNext)
	if err != nil {
		return err
	}
	s.lis = lis
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("ui: serve", "addr", lis.Addr().String(), "err", err)
		}
	}()
	return nil
}

const portTries = 16

// checkLoopback refuses an address beyond loopback: the UI, its REST API
// and /metrics authenticate no one, so only this machine may reach them.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("ui: address %q: %w (give host:port)", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("ui: %s is beyond loopback, and the UI authenticates no one: serve it on loopback (127.0.0.1:4040) and reach it from elsewhere through ssh -L 4040:127.0.0.1:4040 HOST or kubectl port-forward", addr)
	}
	return nil
}

func listen(addr string, tryNext bool) (net.Listener, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err == nil || !tryNext {
		if err != nil {
			return nil, fmt.Errorf("ui: listen on %s: %w (pick another address, or off)", addr, err)
		}
		return lis, nil
	}
	host, portStr, serr := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	if serr != nil || perr != nil || port == 0 {
		return nil, fmt.Errorf("ui: listen on %s: %w", addr, err)
	}
	first := err
	for p := port + 1; p < port+portTries && p < 65536; p++ {
		if lis, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			return lis, nil
		}
	}
	if lis, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err == nil {
		return lis, nil
	}
	return nil, fmt.Errorf("ui: listen on %s, the %d ports after it and any port: %w (pick another address, or off)", addr, portTries-1, first)
}

// Addr is the address the UI listens on, once Listen returned.
func (s *Server) Addr() string {
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// URL is the UI's address as a URL.
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// Shutdown stops serving, letting requests in flight finish until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	<-s.done
	return err
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Tab     string
	AppPath string
	App     Application
	Refresh int // milliseconds; 0: the page does not reload itself
	Content any
}

// page wraps a page's content builder: it finds the application, renders
// tmpl with the content, and answers 404 for what does not exist.
func (s *Server) page(tmpl string, content func(r *http.Request, e *entry, m *model) (any, string, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := s.src.get(r.PathValue("app"))
		if e == nil {
			http.Error(w, fmt.Sprintf("no application %q here (the index lists them)", r.PathValue("app")), http.StatusNotFound)
			return
		}
		var d pageData
		var found bool
		ok := e.view(func(m *model) {
			d.App = m.application(s.live)
			d.App.Dropped = e.t.dropped.Load()
			d.Content, d.Title, found = content(r, e, m)
		})
		if !ok {
			http.Error(w, "the UI is stopping", http.StatusServiceUnavailable)
			return
		}
		if !found {
			http.Error(w, "not found: "+r.URL.Path, http.StatusNotFound)
			return
		}
		d.Tab, d.AppPath = tmpl, "/app/"+url.PathEscape(e.id)
		if d.App.Status == stateRunning && s.opts.Refresh > 0 {
			d.Refresh = int(s.opts.Refresh.Milliseconds())
		}
		if tmpl == "stage" || tmpl == "job" {
			d.Tab = map[string]string{"stage": "stages", "job": "jobs"}[tmpl]
		}
		s.render(w, tmpl, d)
	}
}

func (s *Server) render(w http.ResponseWriter, tmpl string, d any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(w, tmpl, d); err != nil {
		s.opts.Logger.Error("ui: render", "page", tmpl, "err", err)
	}
}

func (s *Server) simplePage(f func(m *model) any) func(*http.Request, *entry, *model) (any, string, bool) {
	return func(_ *http.Request, _ *entry, m *model) (any, string, bool) { return f(m), "", true }
}

type jobsPage struct {
	Jobs     []Job
	Timeline timeline
	Kept     int
}

func (s *Server) jobsPage(r *http.Request, e *entry, m *model) (any, string, bool) {
	jobs := m.jobList()
	app := m.application(s.live)
	return jobsPage{Jobs: jobs, Kept: len(jobs), Timeline: layoutTimeline("/app/"+url.PathEscape(e.id), app, reverse(jobs), m.timelineView())}, "Jobs", true
}

func reverse[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

type jobPage struct {
	Job      Job
	DAG      dag
	Attempts []StageAttempt
}

func (s *Server) jobPage(r *http.Request, e *entry, m *model) (any, string, bool) {
	id, err := strconv.Atoi(r.PathValue("job"))
	j := m.jobByID[id]
	if err != nil || j == nil {
		return nil, "", false
	}
	v := m.jobView(j, true)
	p := jobPage{Job: v, DAG: layoutDAG("/app/"+url.PathEscape(e.id), v)}
	for _, sid := range j.stageIDs {
		st := m.stages[sid]
		if st == nil {
			continue
		}
		for _, a := range st.attempts {
			if a.job == j.id {
				p.Attempts = append(p.Attempts, m.attemptView(st, a, false))
			}
		}
	}
	return p, fmt.Sprintf("Job %d", id), true
}

func (s *Server) stagesPage(r *http.Request, e *entry, m *model) (any, string, bool) {
	return m.stageList(), "Stages", true
}

type stagePage struct {
	Attempt  StageAttempt
	Attempts []StageAttempt // every attempt of the stage, for the links
	Tasks    TaskPage
	Limit    int
}

// stageTasksPerPage is how many task rows the stage page shows at once.
const stageTasksPerPage = 500

func (s *Server) stagePage(r *http.Request, e *entry, m *model) (any, string, bool) {
	id, err := strconv.Atoi(r.PathValue("stage"))
	st := m.stages[id]
	if err != nil || st == nil || len(st.attempts) == 0 {
		return nil, "", false
	}
	a := st.attempts[len(st.attempts)-1]
	if s := r.PathValue("attempt"); s != "" {
		n, err := strconv.Atoi(s)
		if a = m.attempt(id, n); err != nil || a == nil {
			return nil, "", false
		}
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	p := stagePage{Attempt: m.attemptView(st, a, true), Tasks: m.tasks(a, max(offset, 0), stageTasksPerPage), Limit: stageTasksPerPage}
	for _, o := range st.attempts {
		p.Attempts = append(p.Attempts, m.attemptView(st, o, false))
	}
	return p, fmt.Sprintf("Stage %d attempt %d", id, a.attempt), true
}

type storagePage struct {
	RDDs        []RDDStorage
	Checkpoints []Checkpoint
}

type indexPage struct {
	Apps []Application
	IDs  []string
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	entries := s.src.list()
	if s.live && len(entries) == 1 {
		http.Redirect(w, r, "/app/"+url.PathEscape(entries[0].id)+"/", http.StatusFound)
		return
	}
	var p indexPage
	for _, e := range entries {
		e.view(func(m *model) {
			p.Apps = append(p.Apps, m.application(s.live))
			p.IDs = append(p.IDs, e.id)
		})
	}
	s.render(w, "index", pageData{Title: "Applications", Content: p})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
