package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// The REST API, under /api/v1, returns the pages' data as JSON (the types
// of view.go); docs/ui.md lists the endpoints. Unknown applications, jobs
// and stages are 404 with a JSON {"error": ...}.
func (s *Server) apiRoutes() {
	const app = "/api/v1/applications/{app}"
	s.mux.HandleFunc("GET /api/v1/applications", s.apiApplications)
	s.api(app, func(r *http.Request, m *model) (any, error) { return m.application(s.live), nil })
	s.api(app+"/jobs", func(r *http.Request, m *model) (any, error) { return m.jobList(), nil })
	s.api(app+"/jobs/{job}", func(r *http.Request, m *model) (any, error) {
		id, err := strconv.Atoi(r.PathValue("job"))
		if j := m.jobByID[id]; err == nil && j != nil {
			return m.jobView(j, true), nil
		}
		return nil, fmt.Errorf("no job %q (the application keeps its newest jobs in detail)", r.PathValue("job"))
	})
	s.api(app+"/stages", func(r *http.Request, m *model) (any, error) { return m.stageList(), nil })
	s.api(app+"/stages/{stage}", func(r *http.Request, m *model) (any, error) {
		st, err := apiStage(r, m)
		if err != nil {
			return nil, err
		}
		out := []StageAttempt{}
		for _, a := range st.attempts {
			out = append(out, m.attemptView(st, a, false))
		}
		return out, nil
	})
	s.api(app+"/stages/{stage}/{attempt}", func(r *http.Request, m *model) (any, error) {
		st, a, err := apiAttempt(r, m)
		if err != nil {
			return nil, err
		}
		return m.attemptView(st, a, true), nil
	})
	s.api(app+"/stages/{stage}/{attempt}/tasks", func(r *http.Request, m *model) (any, error) {
		_, a, err := apiAttempt(r, m)
		if err != nil {
			return nil, err
		}
		offset, length := 0, 100
		if v := r.URL.Query().Get("offset"); v != "" {
			if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
				return nil, badRequest{fmt.Errorf("offset %q: want a number ≥ 0", v)}
			}
		}
		if v := r.URL.Query().Get("length"); v != "" {
			if length, err = strconv.Atoi(v); err != nil || length < 1 {
				return nil, badRequest{fmt.Errorf("length %q: want a number ≥ 1", v)}
			}
		}
		return m.tasks(a, offset, length), nil
	})
	s.api(app+"/workers", func(r *http.Request, m *model) (any, error) { return m.workerList(), nil })
	s.api(app+"/nodes", func(r *http.Request, m *model) (any, error) { return m.nodeList(), nil })
	s.api(app+"/storage", func(r *http.Request, m *model) (any, error) { return m.storage(), nil })
	s.api(app+"/checkpoints", func(r *http.Request, m *model) (any, error) { return m.checkpointList(), nil })
	s.api(app+"/environment", func(r *http.Request, m *model) (any, error) { return m.environment(), nil })
	s.api(app+"/timeline", func(r *http.Request, m *model) (any, error) { return m.timelineView(), nil })
}

func apiStage(r *http.Request, m *model) (*stage, error) {
	id, err := strconv.Atoi(r.PathValue("stage"))
	if st := m.stages[id]; err == nil && st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("no stage %q", r.PathValue("stage"))
}

func apiAttempt(r *http.Request, m *model) (*stage, *stageAttempt, error) {
	st, err := apiStage(r, m)
	if err != nil {
		return nil, nil, err
	}
	n, err := strconv.Atoi(r.PathValue("attempt"))
	if a := m.attempt(st.id, n); err == nil && a != nil {
		return st, a, nil
	}
	return nil, nil, fmt.Errorf("stage %d has no attempt %q", st.id, r.PathValue("attempt"))
}

// api registers an endpoint of one application: f runs on the model's
// goroutine and returns a snapshot, encoded after it returns.
func (s *Server) api(pattern string, f func(r *http.Request, m *model) (any, error)) {
	s.mux.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
		e := s.src.get(r.PathValue("app"))
		if e == nil {
			apiError(w, http.StatusNotFound, fmt.Errorf("no application %q (GET /api/v1/applications lists them)", r.PathValue("app")))
			return
		}
		var v any
		var err error
		if !e.view(func(m *model) { v, err = f(r, m) }) {
			apiError(w, http.StatusServiceUnavailable, fmt.Errorf("the UI is stopping"))
			return
		}
		var bad badRequest
		switch {
		case errors.As(err, &bad):
			apiError(w, http.StatusBadRequest, err)
		case err != nil:
			apiError(w, http.StatusNotFound, err)
		default:
			writeJSON(w, v)
		}
	})
}

func (s *Server) apiApplications(w http.ResponseWriter, r *http.Request) {
	out := []Application{}
	for _, e := range s.src.list() {
		e.view(func(m *model) { out = append(out, m.application(s.live)) })
	}
	writeJSON(w, out)
}

// badRequest is an error of the request's parameters (400); any other
// error of an endpoint is something that does not exist (404).
type badRequest struct{ error }

func (b badRequest) Unwrap() error { return b.error }

func apiError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": "ui: " + err.Error()})
}
