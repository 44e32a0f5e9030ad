package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"tasksync"
	"tasksync/auth"
	"tasksync/internal/httpjson"
)

// Handler serves the REST task API under /api/{user_id}/tasks.
type Handler struct {
	Service *Service
	// MaxBody limits request bodies; 0 means httpjson.DefaultMaxBody.
	MaxBody int64
}

// Register adds the task routes to mux, each wrapped by mw (authentication,
// the path-user check and rate limiting are the caller's to supply).
func (h *Handler) Register(mux *http.ServeMux, mw func(http.Handler) http.Handler) {
	routes := map[string]http.HandlerFunc{
		"GET /api/{user_id}/tasks":                 h.list,
		"POST /api/{user_id}/tasks":                h.create,
		"GET /api/{user_id}/tasks/{id}":            h.get,
		"PUT /api/{user_id}/tasks/{id}":            h.replace,
		"PATCH /api/{user_id}/tasks/{id}":          h.update,
		"DELETE /api/{user_id}/tasks/{id}":         h.delete,
		"PATCH /api/{user_id}/tasks/{id}/complete": h.complete,
		"POST /api/{user_id}/tasks/{id}/complete":  h.complete, // some clients cannot send PATCH
		"GET /api/{user_id}/tasks/{id}/history":    h.history,
		"POST /api/{user_id}/tasks/{id}/restore":   h.restore,
	}
	for pattern, fn := range routes {
		mux.Handle(pattern, mw(fn))
	}
}

// taskID reads {id}; anything that is not an id in its canonical spelling
// ([ParseID]) cannot name a task, so it is a 404 like any other task that
// is not the caller's.
// callerTask returns the caller and the task id of the path, the two
// things every /tasks/{id} route starts with.
func callerTask(r *http.Request) (string, int64, error) {
	user, err := auth.Caller(r)
	if err != nil {
		return "", 0, err
	}
	id, err := taskID(r)
	return user, id, err
}

func taskID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, ok := ParseID(s)
	if !ok {
		return 0, tasksync.Errorf(tasksync.CodeNotFound, "task %q not found", s)
	}
	return id, nil
}

func (h *Handler) readFields(w http.ResponseWriter, r *http.Request) (Fields, error) {
	var raw map[string]json.RawMessage
	if err := httpjson.Read(w, r, &raw, h.MaxBody); err != nil {
		return Fields{}, err
	}
	if raw == nil {
		return Fields{}, tasksync.Errorf(tasksync.CodeBadRequest, "the body must be a JSON object")
	}
	return DecodeFields(raw)
}

// ifMatch reads If-Match: a task version as an entity tag ("3" or W/"3").
// "*" and an absent header mean no condition. A list of several tags is
// refused: a write is checked against exactly one version.
func ifMatch(r *http.Request) (int, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	versions := etagVersions(v)
	if len(versions) != 1 {
		// Several versions (or none we could have issued): the service
		// checks one version, so ask for exactly one.
		return 0, tasksync.Errorf(tasksync.CodeVersionMismatch, "If-Match must name one version of this task, like \"3\"")
	}
	return versions[0], nil
}

// etagVersions parses a list of entity tags into task versions, skipping
// tags this server could not have issued.
func etagVersions(list string) []int {
	var out []int
	for _, tag := range strings.Split(list, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if n, err := strconv.Atoi(strings.Trim(tag, `"`)); err == nil && n > 0 && len(tag) >= 2 && tag[0] == '"' {
			out = append(out, n)
		}
	}
	return out
}

// etagListHas reports whether an If-None-Match list matches version ("*"
// matches any existing task).
func etagListHas(list string, version int) bool {
	if strings.TrimSpace(list) == "*" {
		return true
	}
	for _, v := range etagVersions(list) {
		if v == version {
			return true
		}
	}
	return false
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if err := ValidateIdempotencyKey(key); err != nil {
		return "", err
	}
	return key, nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	user, err := auth.Caller(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	q, err := ParseListQuery(r.URL.Query())
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	page, err := h.Service.List(r.Context(), user, q)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if page.NextCursor != "" {
		next := *r.URL
		params := next.Query()
		params.Set("cursor", page.NextCursor)
		next.RawQuery = params.Encode()
		w.Header().Set("X-Next-Cursor", page.NextCursor)
		w.Header().Set("Link", "<"+(&url.URL{Path: next.Path, RawQuery: next.RawQuery}).String()+`>; rel="next"`)
	}
	// The body is a plain array, as the seed client expects; pagination
	// travels in the Link and X-Next-Cursor headers.
	httpjson.Write(w, http.StatusOK, page.Tasks)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	user, id, err := callerTask(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	t, err := h.Service.Get(r.Context(), user, id)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	w.Header().Set("ETag", t.ETag())
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListHas(inm, t.Version) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	httpjson.Write(w, http.StatusOK, t)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	user, err := auth.Caller(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	f, err := h.readFields(w, r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	res, err := h.Service.Create(r.Context(), user, f, MutationOptions{IdempotencyKey: key, Actor: ActorREST})
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/api/"+url.PathEscape(user)+"/tasks/"+strconv.FormatInt(res.TaskID, 10))
	w.Header().Set("ETag", res.Task.ETag())
	httpjson.Write(w, http.StatusCreated, res.Task)
}

// mutation runs one of the change endpoints: it reads the task id and
// If-Match, calls do, and writes the resulting task.
func (h *Handler) mutation(w http.ResponseWriter, r *http.Request, do func(user string, id int64, opts MutationOptions) (Result, error)) {
	user, id, err := callerTask(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	res, err := do(user, id, MutationOptions{IfVersion: version, IdempotencyKey: key, Actor: ActorREST})
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	if res.Task == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("ETag", res.Task.ETag())
	if res.Op == OpCreated { // a deleted task restored
		w.Header().Set("Location", "/api/"+url.PathEscape(user)+"/tasks/"+strconv.FormatInt(res.TaskID, 10))
		httpjson.Write(w, http.StatusCreated, res.Task)
		return
	}
	httpjson.Write(w, http.StatusOK, res.Task)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	h.mutation(w, r, func(user string, id int64, opts MutationOptions) (Result, error) {
		f, err := h.readFields(w, r)
		if err != nil {
			return Result{}, err
		}
		return h.Service.Update(r.Context(), user, id, f, opts)
	})
}

func (h *Handler) replace(w http.ResponseWriter, r *http.Request) {
	h.mutation(w, r, func(user string, id int64, opts MutationOptions) (Result, error) {
		f, err := h.readFields(w, r)
		if err != nil {
			return Result{}, err
		}
		return h.Service.Replace(r.Context(), user, id, f, opts)
	})
}

func (h *Handler) complete(w http.ResponseWriter, r *http.Request) {
	h.mutation(w, r, func(user string, id int64, opts MutationOptions) (Result, error) {
		// The body is optional: none (or {}) toggles, {"completed": b} sets.
		var completed *bool
		f, err := h.readFields(w, r)
		switch {
		case errors.Is(err, httpjson.ErrEmptyBody):
		case err != nil:
			return Result{}, err
		default:
			completed = f.Completed
		}
		return h.Service.SetCompleted(r.Context(), user, id, completed, opts)
	})
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	h.mutation(w, r, func(user string, id int64, opts MutationOptions) (Result, error) {
		scope, err := ParseDeleteScope(r.URL.Query().Get("series"))
		if err != nil {
			return Result{}, err
		}
		if scope == DeleteSeries {
			return h.Service.DeleteSeries(r.Context(), user, id, opts)
		}
		return h.Service.Delete(r.Context(), user, id, opts)
	})
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	user, id, err := callerTask(r)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	limit, err := ParseHistoryLimit(r.URL.Query().Get("limit"))
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	hist, err := h.Service.History(r.Context(), user, id, limit)
	if err != nil {
		httpjson.WriteError(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, hist)
}

// ParseHistoryLimit reads the limit of a history request: "" for the
// default, else 1 to MaxHistoryLimit in ParseID's one spelling.
func ParseHistoryLimit(s string) (int, error) {
	if s == "" {
		return DefaultHistoryLimit, nil
	}
	n, ok := ParseID(s)
	if !ok || n > MaxHistoryLimit {
		return 0, &tasksync.Error{Code: tasksync.CodeBadRequest, Message: "invalid history parameters",
			Fields: map[string]string{"limit": fmt.Sprintf("must be a whole number from 1 to %d", MaxHistoryLimit)}}
	}
	return int(n), nil
}

// DecodeRestoreVersion reads the optional version of a restore request
// ({} or {"version": N}): 0 when absent or null.
func DecodeRestoreVersion(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && raw[0] != '"' { // json.Number takes "1" too
		if v, ok := ParseID(n.String()); ok && v <= math.MaxInt32 {
			return int(v), nil
		}
	}
	return 0, tasksync.Invalid(map[string]string{"version": "must be a version of the task: a whole number from 1 (see its history)"})
}

func (h *Handler) restore(w http.ResponseWriter, r *http.Request) {
	h.mutation(w, r, func(user string, id int64, opts MutationOptions) (Result, error) {
		var body map[string]json.RawMessage
		err := httpjson.Read(w, r, &body, h.MaxBody)
		switch {
		case errors.Is(err, httpjson.ErrEmptyBody):
		case err != nil:
			return Result{}, err
		case body == nil:
			return Result{}, tasksync.Errorf(tasksync.CodeBadRequest, "the body must be a JSON object: {} or {\"version\": N}")
		}
		version, err := DecodeRestoreVersion(body["version"])
		if err != nil {
			return Result{}, err
		}
		return h.Service.Restore(r.Context(), user, id, version, opts)
	})
}
