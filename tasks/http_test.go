package tasks

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tasksync/auth"
)

func TestHTTPCreateAndGet(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")

	res := alice.do(t, http.MethodPost, alice.tasksPath(""),
		`{"title":"  Buy milk  ","description":" 2 litres ","priority":"HIGH","tags":[" home ","Home","errands"],"due_date":"2026-12-01T17:00:00.5+02:00","unknown":1}`)
	res.wantStatus(t, http.StatusCreated)
	created := res.task(t)
	if created.ID <= 0 || created.UserID != "alice" || created.Title != "Buy milk" || created.Description != "2 litres" ||
		created.Priority != PriorityHigh || !slices.Equal(created.Tags, []string{"home", "errands"}) ||
		created.Completed || created.Version != 1 {
		t.Fatalf("created task %+v", created)
	}
	if got := res.header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag %q, want \"1\"", got)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	raw := res.jsonObject(t)
	wantKeys := []string{"completed", "created_at", "description", "due_at", "due_date", "id", "priority", "recurrence", "remind_at", "series_id", "tags", "title", "tz", "updated_at", "user_id", "version"}
	if keys := slices.Sorted(maps.Keys(raw)); !slices.Equal(keys, wantKeys) {
		t.Errorf("task JSON keys %v, want %v", keys, wantKeys)
	}
	if raw["due_date"] != "2026-12-01T15:00:00.500000Z" {
		t.Errorf("due_date %v, want 2026-12-01T15:00:00.500000Z", raw["due_date"])
	}
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := raw[k].(string)
		if _, err := time.Parse(TimeLayout, s); err != nil || len(s) != len(TimeLayout) {
			t.Errorf("%s %q is not in TimeLayout", k, s)
		}
	}

	loc := res.header.Get("Location")
	if want := "/api/alice/tasks/" + strconv.FormatInt(created.ID, 10); loc != want {
		t.Fatalf("Location %q, want %q", loc, want)
	}
	got := alice.do(t, http.MethodGet, loc, "")
	got.wantStatus(t, http.StatusOK)
	if !reflect.DeepEqual(got.jsonObject(t), raw) {
		t.Errorf("GET Location = %s, want the created task %s", got.body, res.body)
	}
	if etag := got.header.Get("ETag"); etag != `"1"` {
		t.Errorf("GET ETag %q", etag)
	}

	// Defaults of fields that are not sent.
	minimal := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"x"}`)
	minimal.wantStatus(t, http.StatusCreated)
	m := minimal.jsonObject(t)
	if m["priority"] != "medium" || m["description"] != "" || m["due_date"] != nil || m["completed"] != false ||
		!reflect.DeepEqual(m["tags"], []any{}) {
		t.Errorf("defaults: %s", minimal.body)
	}

	list := alice.do(t, http.MethodGet, alice.tasksPath(""), "")
	list.wantStatus(t, http.StatusOK)
	tasks := list.tasks(t)
	if len(tasks) != 2 || tasks[0].ID != created.ID || tasks[1].ID != int64(m["id"].(float64)) {
		t.Errorf("list %s", list.body)
	}
	if list.header.Get("Link") != "" || list.header.Get("X-Next-Cursor") != "" {
		t.Errorf("single page has pagination headers: %v", list.header)
	}
}

func TestHTTPListEmptyIsArray(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	res := alice.do(t, http.MethodGet, alice.tasksPath(""), "")
	res.wantStatus(t, http.StatusOK)
	if strings.TrimSpace(string(res.body)) != "[]" {
		t.Errorf("empty list body %q, want []", res.body)
	}
}

func TestHTTPNotModified(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"cache me"}`)
	path := alice.tasksPath(idPath(task.ID))

	for _, inm := range []string{`"1"`, `W/"1"`, `"7", "1"`, `*`} {
		res := alice.do(t, http.MethodGet, path, "", "If-None-Match", inm)
		res.wantStatus(t, http.StatusNotModified)
		if len(res.body) != 0 || res.header.Get("ETag") != `"1"` {
			t.Errorf("If-None-Match %s: body %q ETag %q", inm, res.body, res.header.Get("ETag"))
		}
	}
	for _, inm := range []string{`"2"`, `"11"`, `"10", "21"`} {
		res := alice.do(t, http.MethodGet, path, "", "If-None-Match", inm)
		res.wantStatus(t, http.StatusOK)
		if res.task(t).ID != task.ID {
			t.Errorf("If-None-Match %s: body %s", inm, res.body)
		}
	}

	alice.do(t, http.MethodPatch, path, `{"title":"changed"}`).wantStatus(t, http.StatusOK)
	res := alice.do(t, http.MethodGet, path, "", "If-None-Match", `"1"`)
	res.wantStatus(t, http.StatusOK)
	if res.header.Get("ETag") != `"2"` || res.task(t).Title != "changed" {
		t.Errorf("after change: ETag %q body %s", res.header.Get("ETag"), res.body)
	}
	alice.do(t, http.MethodGet, path, "", "If-None-Match", `"2"`).wantStatus(t, http.StatusNotModified)
}

func TestHTTPReplace(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"full","description":"d","priority":"high","tags":["a"],"due_date":"2026-01-02"}`)
	path := alice.tasksPath(idPath(task.ID))
	alice.do(t, http.MethodPatch, path+"/complete", "").wantStatus(t, http.StatusOK) // version 2, completed

	res := alice.do(t, http.MethodPut, path, `{"title":"replaced"}`)
	res.wantStatus(t, http.StatusOK)
	got := res.task(t)
	if got.Title != "replaced" || got.Description != "" || got.Priority != PriorityMedium || len(got.Tags) != 0 ||
		got.DueAt != nil || !got.Completed || got.Version != 3 || got.ID != task.ID {
		t.Errorf("PUT without other fields: %+v (want defaults, completion kept, version 3)", got)
	}
	if res.header.Get("ETag") != `"3"` {
		t.Errorf("ETag %q, want \"3\"", res.header.Get("ETag"))
	}

	res = alice.do(t, http.MethodPut, path, `{"title":"again","completed":false,"priority":"low","tags":["x","y"],"description":"dd","due_date":"2027-05-06T07:08:09Z"}`)
	res.wantStatus(t, http.StatusOK)
	got = res.task(t)
	if got.Title != "again" || got.Completed || got.Priority != PriorityLow || !slices.Equal(got.Tags, []string{"x", "y"}) ||
		got.Description != "dd" || got.DueAt == nil || !got.DueAt.Equal(time.Date(2027, 5, 6, 7, 8, 9, 0, time.UTC)) || got.Version != 4 {
		t.Errorf("PUT with every field: %+v", got)
	}

	res = alice.do(t, http.MethodPut, path, `{"description":"no title"}`)
	if e := res.wantError(t, http.StatusUnprocessableEntity, "invalid"); !maps.Equal(e.Fields, map[string]string{"title": "is required and must not be blank"}) {
		t.Errorf("PUT without title: fields %v", e.Fields)
	}
	if v := alice.get(t, task.ID).Version; v != 4 {
		t.Errorf("failed PUT changed the task: version %d", v)
	}
}

func TestHTTPPatch(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"t","description":"d","priority":"high","tags":["a","b"],"due_date":"2026-01-02"}`)
	path := alice.tasksPath(idPath(task.ID))

	res := alice.do(t, http.MethodPatch, path, `{"priority":"low"}`)
	res.wantStatus(t, http.StatusOK)
	got := res.task(t)
	want := task
	want.Priority, want.Version, want.UpdatedAt = PriorityLow, 2, got.UpdatedAt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PATCH priority:\n got %+v\nwant %+v", got, want)
	}
	if got.UpdatedAt.Before(task.UpdatedAt) || res.header.Get("ETag") != `"2"` {
		t.Errorf("updated_at %v (was %v), ETag %q", got.UpdatedAt, task.UpdatedAt, res.header.Get("ETag"))
	}

	got = alice.do(t, http.MethodPatch, path, `{"due_date":null,"description":null,"tags":null}`).task(t)
	if got.DueAt != nil || got.Description != "" || len(got.Tags) != 0 || got.Title != "t" || got.Version != 3 {
		t.Errorf("PATCH clearing fields: %+v", got)
	}

	// Nothing sent, or only unknown keys, or the same values: no change.
	for _, body := range []string{`{}`, `{"color":"red"}`, `{"title":" t ","priority":"LOW"}`} {
		res := alice.do(t, http.MethodPatch, path, body)
		res.wantStatus(t, http.StatusOK)
		if v := res.task(t).Version; v != 3 || res.header.Get("ETag") != `"3"` {
			t.Errorf("no-op PATCH %s: version %d ETag %q, want 3", body, v, res.header.Get("ETag"))
		}
	}
	// application/merge-patch+json is JSON too.
	res = alice.do(t, http.MethodPatch, path, `{"title":"merged"}`, "Content-Type", "application/merge-patch+json")
	res.wantStatus(t, http.StatusOK)
	if got := res.task(t); got.Title != "merged" || got.Version != 4 {
		t.Errorf("merge-patch: %+v", got)
	}
}

func TestHTTPDelete(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	keep := alice.create(t, `{"title":"keep"}`)
	gone := alice.create(t, `{"title":"gone"}`)
	path := alice.tasksPath(idPath(gone.ID))

	res := alice.do(t, http.MethodDelete, path, "")
	res.wantStatus(t, http.StatusNoContent)
	if len(res.body) != 0 {
		t.Errorf("204 with body %q", res.body)
	}
	alice.do(t, http.MethodGet, path, "").wantError(t, http.StatusNotFound, "not_found")
	alice.do(t, http.MethodDelete, path, "").wantError(t, http.StatusNotFound, "not_found")
	list := alice.do(t, http.MethodGet, alice.tasksPath(""), "").tasks(t)
	if len(list) != 1 || list[0].ID != keep.ID {
		t.Errorf("list after delete: %+v", list)
	}
}

func TestHTTPComplete(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"do it"}`)
	path := alice.tasksPath(idPath(task.ID) + "/complete")

	steps := []struct {
		method, body  string
		wantCompleted bool
		wantVersion   int
	}{
		{http.MethodPatch, "", true, 2}, // no body toggles
		{http.MethodPatch, "", false, 3},
		{http.MethodPatch, `{"completed":true}`, true, 4},
		{http.MethodPatch, `{"completed":true}`, true, 4}, // already done: no change
		{http.MethodPost, "", false, 5},
		{http.MethodPost, `{}`, true, 6}, // {} toggles too
		{http.MethodPost, `{"completed":false}`, false, 7},
		{http.MethodPost, `{"completed":false}`, false, 7},
	}
	for i, s := range steps {
		res := alice.do(t, s.method, path, s.body)
		res.wantStatus(t, http.StatusOK)
		got := res.task(t)
		if got.Completed != s.wantCompleted || got.Version != s.wantVersion || got.Title != "do it" {
			t.Errorf("step %d (%s %q): completed %v version %d, want %v %d", i, s.method, s.body, got.Completed, got.Version, s.wantCompleted, s.wantVersion)
		}
		if etag := res.header.Get("ETag"); etag != `"`+strconv.Itoa(s.wantVersion)+`"` {
			t.Errorf("step %d: ETag %q", i, etag)
		}
	}
	res := alice.do(t, http.MethodPatch, path, `{"completed":"yes"}`)
	if e := res.wantError(t, http.StatusUnprocessableEntity, "invalid"); !maps.Equal(e.Fields, map[string]string{"completed": "must be true or false"}) {
		t.Errorf("fields %v", e.Fields)
	}
	res = alice.do(t, http.MethodPost, path, `{"completed":null}`)
	res.wantError(t, http.StatusUnprocessableEntity, "invalid")
	if v := alice.get(t, task.ID).Version; v != 7 {
		t.Errorf("rejected completes changed the task: version %d", v)
	}
}

func TestHTTPBadRequest(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"t"}`)
	one := alice.tasksPath(idPath(task.ID))

	bodies := []string{`{"title":`, `{"title":"a"} {"title":"b"}`, `{"title":"a"}x`, `[]`, `["title"]`, `"title"`, `null`, `42`, `true`, `{title:"a"}`}
	for _, b := range bodies {
		for _, target := range []struct{ method, path string }{
			{http.MethodPost, alice.tasksPath("")},
			{http.MethodPut, one},
			{http.MethodPatch, one},
			{http.MethodPatch, one + "/complete"},
			{http.MethodPost, one + "/complete"},
		} {
			res := alice.do(t, target.method, target.path, b)
			if e := res.wantError(t, http.StatusBadRequest, "bad_request"); e.Fields != nil {
				t.Errorf("%s %s %s: fields %v", target.method, target.path, b, e.Fields)
			}
		}
	}
	// An empty body where an object is required.
	alice.do(t, http.MethodPost, alice.tasksPath(""), "").wantError(t, http.StatusBadRequest, "bad_request")
	alice.do(t, http.MethodPatch, one, "").wantError(t, http.StatusBadRequest, "bad_request")

	// Idempotency-Key that is not 1..200 printable ASCII characters.
	for _, key := range []string{"has space", strings.Repeat("k", MaxIdempotencyKey+1), "tab\tkey"} {
		res := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"k"}`, "Idempotency-Key", key)
		res.wantError(t, http.StatusBadRequest, "bad_request")
	}

	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks after bad requests, want 1", n)
	}
	if v := alice.get(t, task.ID).Version; v != 1 {
		t.Errorf("bad requests changed the task: version %d", v)
	}
}

func TestHTTPBadListParameters(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	cases := []struct {
		query string
		want  map[string]string
	}{
		{"status=done&priority=high,urgent&limit=0&sort=name&order=up&due_before=tomorrow&due_after=2026-13-01&cursor=%25%25", map[string]string{
			"status":     "must be one of all, pending, completed",
			"priority":   "must be low, medium or high (comma-separated for several)",
			"limit":      "must be a whole number from 1 to 500",
			"sort":       "must be one of created, updated, title, due_date, priority",
			"order":      "must be asc or desc",
			"due_before": "must be an RFC 3339 date-time (2026-12-01T17:00:00Z) or a YYYY-MM-DD date",
			"due_after":  "must be an RFC 3339 date-time (2026-12-01T17:00:00Z) or a YYYY-MM-DD date",
			"cursor":     "is not a cursor returned by this server",
		}},
		{"limit=501", map[string]string{"limit": "must be a whole number from 1 to 500"}},
		{"limit=ten", map[string]string{"limit": "must be a whole number from 1 to 500"}},
		{"limit=-1", map[string]string{"limit": "must be a whole number from 1 to 500"}},
		{"limit=%2B5", map[string]string{"limit": "must be a whole number from 1 to 500"}},
		{"limit=05", map[string]string{"limit": "must be a whole number from 1 to 500"}},
		{"tag=" + strings.Repeat("t", MaxTag+1), map[string]string{"tag": "must be at most 50 characters"}},
		{strings.Repeat("tag=x&", MaxTags+1), map[string]string{"tag": "at most 20 tags"}},
		{"q=" + strings.Repeat("q", MaxQuery+1), map[string]string{"q": "must be at most 200 characters"}},
	}
	for _, c := range cases {
		res := alice.do(t, http.MethodGet, alice.tasksPath("?"+c.query), "")
		got := res.wantError(t, http.StatusBadRequest, "bad_request")
		if !maps.Equal(got.Fields, c.want) {
			t.Errorf("?%s: fields\n got %v\nwant %v", c.query, got.Fields, c.want)
		}
	}
	// Limits at the edge are fine; multi-byte characters count once.
	for _, q := range []string{"limit=1", "limit=500", "tag=" + strings.Repeat("é", MaxTag), "q=" + strings.Repeat("é", MaxQuery), strings.Repeat("tag=x&", MaxTags)} {
		alice.do(t, http.MethodGet, alice.tasksPath("?"+q), "").wantStatus(t, http.StatusOK)
	}
}

// endpoints lists every task route with a body that would succeed.
func endpoints(c *apiClient, id int64) []struct{ method, path, body string } {
	one := c.tasksPath(idPath(id))
	return []struct{ method, path, body string }{
		{http.MethodGet, c.tasksPath(""), ""},
		{http.MethodPost, c.tasksPath(""), `{"title":"new"}`},
		{http.MethodGet, one, ""},
		{http.MethodPut, one, `{"title":"put"}`},
		{http.MethodPatch, one, `{"title":"patch"}`},
		{http.MethodDelete, one, ""},
		{http.MethodPatch, one + "/complete", ""},
		{http.MethodPost, one + "/complete", `{"completed":true}`},
	}
}

func TestHTTPUnauthorized(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"mine"}`)

	otherSecret := []byte("another-secret-another-secret-0123456789")
	forged, err := auth.IssueHS256(otherSecret, "alice", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	badTokens := map[string]string{"garbage": "not.a.jwt", "wrong secret": forged, "truncated": alice.token[:len(alice.token)-4]}

	for _, ep := range endpoints(alice, task.ID) {
		res := e.anonymous().do(t, ep.method, ep.path, ep.body)
		res.wantError(t, http.StatusUnauthorized, "unauthorized")
		if got := res.header.Get("WWW-Authenticate"); got != `Bearer realm="tasksync"` {
			t.Errorf("%s %s without token: WWW-Authenticate %q", ep.method, ep.path, got)
		}
		res = e.anonymous().do(t, ep.method, ep.path, ep.body, "Authorization", "Basic YWxpY2U6cHc=")
		res.wantError(t, http.StatusUnauthorized, "unauthorized")

		for name, tok := range badTokens {
			c := &apiClient{env: e, user: "alice", token: tok}
			res := c.do(t, ep.method, ep.path, ep.body)
			res.wantError(t, http.StatusUnauthorized, "unauthorized")
			if got := res.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="tasksync", error="invalid_token"`) {
				t.Errorf("%s %s with %s token: WWW-Authenticate %q", ep.method, ep.path, name, got)
			}
		}
	}
	if got := alice.get(t, task.ID); got.Version != 1 || got.Title != "mine" {
		t.Errorf("unauthorized requests changed the task: %+v", got)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

func TestHTTPForbidden(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice, bob := e.as(t, "alice"), e.as(t, "bob")
	task := bob.create(t, `{"title":"bob's"}`)

	// Alice's token on Bob's paths.
	intruder := &apiClient{env: e, user: "bob", token: alice.token}
	for _, ep := range endpoints(intruder, task.ID) {
		e := intruder.do(t, ep.method, ep.path, ep.body).wantError(t, http.StatusForbidden, "forbidden")
		if e.Message != "this token belongs to another user" {
			t.Errorf("%s %s: message %q", ep.method, ep.path, e.Message)
		}
	}
	if got := bob.get(t, task.ID); got.Version != 1 || got.Title != "bob's" || got.Completed {
		t.Errorf("forbidden requests changed the task: %+v", got)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

func TestHTTPNotFound(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	alice.create(t, `{"title":"exists"}`)

	// Task 1 exists: other spellings of 1 do not name it.
	for _, id := range []string{"999999", "abc", "0", "-1", "1.5", "99999999999999999999", "1e3", "+1", "01", "1e0", " 1", "1 ", "\t1", "١"} {
		one := alice.tasksPath("/" + url.PathEscape(id))
		for _, ep := range []struct{ method, path, body string }{
			{http.MethodGet, one, ""},
			{http.MethodPut, one, `{"title":"x"}`},
			{http.MethodPatch, one, `{"title":"x"}`},
			{http.MethodDelete, one, ""},
			{http.MethodPatch, one + "/complete", ""},
			{http.MethodPost, one + "/complete", ""},
		} {
			res := alice.do(t, ep.method, ep.path, ep.body)
			e := res.wantError(t, http.StatusNotFound, "not_found")
			if want := "task " + strconv.Quote(id) + " not found"; id == "999999" {
				if e.Message != "task 999999 not found" {
					t.Errorf("%s %s: message %q", ep.method, ep.path, e.Message)
				}
			} else if e.Message != want {
				t.Errorf("%s %s: message %q, want %q", ep.method, ep.path, e.Message, want)
			}
		}
	}
	// Routes that do not exist get the JSON shape too.
	for _, p := range []string{"/api/alice/nothing", "/api/alice/tasks/1/extra", "/"} {
		alice.do(t, http.MethodGet, p, "").wantError(t, http.StatusNotFound, "not_found")
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

func TestHTTPMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	cases := []struct {
		method, path string
		allow        []string
	}{
		{http.MethodDelete, alice.tasksPath(""), []string{"GET", "HEAD", "POST"}},
		{http.MethodPatch, alice.tasksPath(""), []string{"GET", "HEAD", "POST"}},
		{http.MethodPost, alice.tasksPath("/1"), []string{"DELETE", "GET", "HEAD", "PATCH", "PUT"}},
		{http.MethodGet, alice.tasksPath("/1/complete"), []string{"PATCH", "POST"}},
		{http.MethodPut, alice.tasksPath("/1/complete"), []string{"PATCH", "POST"}},
	}
	for _, c := range cases {
		res := alice.do(t, c.method, c.path, `{"title":"x"}`)
		res.wantError(t, http.StatusMethodNotAllowed, "method_not_allowed")
		var allow []string
		for _, m := range strings.Split(res.header.Get("Allow"), ",") {
			allow = append(allow, strings.TrimSpace(m))
		}
		slices.Sort(allow)
		if !slices.Equal(allow, c.allow) {
			t.Errorf("%s %s: Allow %q, want %v", c.method, c.path, res.header.Get("Allow"), c.allow)
		}
	}
}

func TestHTTPIfMatch(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"v1"}`)
	one := alice.tasksPath(idPath(task.ID))

	// The right version succeeds and moves the ETag on.
	res := alice.do(t, http.MethodPatch, one, `{"title":"v2"}`, "If-Match", `"1"`)
	res.wantStatus(t, http.StatusOK)
	if res.header.Get("ETag") != `"2"` || res.task(t).Version != 2 {
		t.Fatalf("PATCH with If-Match \"1\": ETag %q body %s", res.header.Get("ETag"), res.body)
	}
	current := alice.do(t, http.MethodGet, one, "")

	// Every change with the stale version fails with the current task.
	for _, ep := range []struct{ method, path, body string }{
		{http.MethodPut, one, `{"title":"stale put"}`},
		{http.MethodPatch, one, `{"title":"stale patch"}`},
		{http.MethodDelete, one, ""},
		{http.MethodPatch, one + "/complete", ""},
		{http.MethodPost, one + "/complete", `{"completed":true}`},
	} {
		for _, etag := range []string{`"1"`, `W/"1"`, `"3"`} {
			res := alice.do(t, ep.method, ep.path, ep.body, "If-Match", etag)
			e := res.wantError(t, http.StatusPreconditionFailed, "version_mismatch")
			if e.Current == nil || !reflect.DeepEqual(mustJSONMap(t, e.Current), current.jsonObject(t)) {
				t.Errorf("%s %s If-Match %s: current %s, want %s", ep.method, ep.path, etag, e.Current, current.body)
			}
		}
	}
	// An entity tag that was never issued cannot match.
	alice.do(t, http.MethodPatch, one, `{"title":"x"}`, "If-Match", `"abc"`).wantError(t, http.StatusPreconditionFailed, "version_mismatch")
	if got := alice.get(t, task.ID); got.Version != 2 || got.Title != "v2" || got.Completed {
		t.Fatalf("stale writes changed the task: %+v", got)
	}

	// Weak and wildcard forms of the right version are accepted.
	res = alice.do(t, http.MethodPut, one, `{"title":"v3"}`, "If-Match", `W/"2"`)
	res.wantStatus(t, http.StatusOK)
	if res.header.Get("ETag") != `"3"` {
		t.Errorf("PUT ETag %q, want \"3\"", res.header.Get("ETag"))
	}
	alice.do(t, http.MethodPost, one+"/complete", "", "If-Match", `"3"`).wantStatus(t, http.StatusOK)
	alice.do(t, http.MethodPatch, one, `{"title":"v5"}`, "If-Match", "*").wantStatus(t, http.StatusOK)
	alice.do(t, http.MethodDelete, one, "", "If-Match", `"4"`).wantError(t, http.StatusPreconditionFailed, "version_mismatch")
	alice.do(t, http.MethodDelete, one, "", "If-Match", `"5"`).wantStatus(t, http.StatusNoContent)
}

func TestHTTPTooLarge(t *testing.T) {
	t.Parallel()
	e := newAPI(t, func(h *Handler) { h.MaxBody = 64 })
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"fits in 64 bytes"}`)
	one := alice.tasksPath(idPath(task.ID))
	big := `{"title":"` + strings.Repeat("x", 100) + `"}`
	for _, ep := range []struct{ method, path string }{
		{http.MethodPost, alice.tasksPath("")},
		{http.MethodPut, one},
		{http.MethodPatch, one},
		{http.MethodPatch, one + "/complete"},
		{http.MethodPost, one + "/complete"},
	} {
		e := alice.do(t, ep.method, ep.path, big).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
		if e.Message != "the body is larger than 64 bytes" {
			t.Errorf("%s %s: message %q", ep.method, ep.path, e.Message)
		}
	}
	// Padding after a complete value is still part of the body.
	alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"t"}`+strings.Repeat(" ", 100)).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
	if got := alice.get(t, task.ID); got.Version != 1 {
		t.Errorf("oversized requests changed the task: %+v", got)
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

func TestHTTPUnsupportedMedia(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"t"}`)
	one := alice.tasksPath(idPath(task.ID))
	for _, ct := range []string{"text/plain", "application/xml", "application/x-www-form-urlencoded", "nonsense;;"} {
		for _, ep := range []struct{ method, path, body string }{
			{http.MethodPost, alice.tasksPath(""), `{"title":"x"}`},
			{http.MethodPut, one, `{"title":"x"}`},
			{http.MethodPatch, one, `{"title":"x"}`},
			{http.MethodPatch, one + "/complete", `{"completed":true}`},
			{http.MethodPost, one + "/complete", `{"completed":true}`},
		} {
			alice.do(t, ep.method, ep.path, ep.body, "Content-Type", ct).wantError(t, http.StatusUnsupportedMediaType, "unsupported_media")
		}
	}
	if got := alice.get(t, task.ID); got.Version != 1 || got.Title != "t" {
		t.Errorf("rejected requests changed the task: %+v", got)
	}
	// charset parameters are fine.
	alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"y"}`, "Content-Type", "application/json; charset=utf-8").wantStatus(t, http.StatusCreated)
}

func TestHTTPValidation(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")

	tags := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = strconv.Quote("tag" + strconv.Itoa(i))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	const (
		blank    = "is required and must not be blank"
		long200  = "must be at most 200 characters"
		long1000 = "must be at most 1000 characters"
		long50   = "must be at most 50 characters"
		many20   = "must have at most 20 items"
		oneOf    = "must be one of low, medium, high"
	)
	invalid := []struct {
		name, body string
		want       map[string]string
	}{
		{"no title", `{"description":"x"}`, map[string]string{"title": blank}},
		{"empty title", `{"title":""}`, map[string]string{"title": blank}},
		{"blank title", `{"title":" \t\n "}`, map[string]string{"title": blank}},
		{"null title", `{"title":null}`, map[string]string{"title": "must be a string"}},
		{"201 chars", `{"title":"` + strings.Repeat("a", 201) + `"}`, map[string]string{"title": long200}},
		{"201 multi-byte chars", `{"title":"` + strings.Repeat("é", 201) + `"}`, map[string]string{"title": long200}},
		{"description 1001", `{"title":"t","description":"` + strings.Repeat("d", 1001) + `"}`, map[string]string{"description": long1000}},
		{"21 tags", `{"title":"t","tags":` + tags(21) + `}`, map[string]string{"tags": many20}},
		{"51-char tag", `{"title":"t","tags":["ok","` + strings.Repeat("g", 51) + `"]}`, map[string]string{"tags[1]": long50}},
		{"empty tag", `{"title":"t","tags":["  "]}`, map[string]string{"tags[0]": "must not be empty"}},
		{"unknown priority", `{"title":"t","priority":"urgent"}`, map[string]string{"priority": oneOf}},
		{"everything at once", `{"title":"  ","description":"` + strings.Repeat("d", 1001) + `","priority":"asap","tags":` + tags(21) + `}`,
			map[string]string{"title": blank, "description": long1000, "priority": oneOf, "tags": many20}},
		{"wrong types", `{"title":5,"description":false,"completed":"yes","priority":3,"tags":"a","due_date":1}`, map[string]string{
			"title": "must be a string", "description": "must be a string", "completed": "must be true or false",
			"priority": oneOf, "tags": "must be an array of strings", "due_date": "must be a string: an RFC 3339 date-time or a YYYY-MM-DD date",
		}},
		{"bad due date", `{"title":"t","due_date":"next week"}`, map[string]string{"due_date": "must be an RFC 3339 date-time (2026-12-01T17:00:00Z) or a YYYY-MM-DD date"}},
		{"tags of numbers", `{"title":"t","tags":[1,2]}`, map[string]string{"tags": "must be an array of strings"}},
		// Postgres text cannot hold NUL: refused as invalid, not a 500 from the INSERT.
		{"NUL characters", `{"title":"a\u0000b","description":"\u0000","tags":["ok","x\u0000"]}`, map[string]string{
			"title": "must be UTF-8 text without NUL characters", "description": "must be UTF-8 text without NUL characters",
			"tags[1]": "must be UTF-8 text without NUL characters",
		}},
		// Invalid UTF-8 and lone surrogates are refused, not stored as U+FFFD.
		{"invalid UTF-8 bytes", "{\"title\":\"bad\xff\xfe\",\"description\":\"\xc3\",\"tags\":[\"ok\",\"\xed\xa0\x80\"]}", map[string]string{
			"title": "must be UTF-8 text without NUL characters", "description": "must be UTF-8 text without NUL characters",
			"tags[1]": "must be UTF-8 text without NUL characters",
		}},
		{"lone surrogates", `{"title":"\ud800","description":"a\udc00b","tags":["\ud83d\ud83d"]}`, map[string]string{
			"title": "must be UTF-8 text without NUL characters", "description": "must be UTF-8 text without NUL characters",
			"tags[0]": "must be UTF-8 text without NUL characters",
		}},
		// Years are checked in UTC, the zone the date is stored in.
		{"year 0 date", `{"title":"t","due_date":"0000-06-01"}`, map[string]string{"due_date": "must be between years 1 and 9999"}},
		{"year 0 in UTC", `{"title":"t","due_date":"0001-01-01T00:30:00+01:00"}`, map[string]string{"due_date": "must be between years 1 and 9999"}},
		{"year 10000 in UTC", `{"title":"t","due_date":"9999-12-31T23:30:00-01:00"}`, map[string]string{"due_date": "must be between years 1 and 9999"}},
	}
	for _, c := range invalid {
		res := alice.do(t, http.MethodPost, alice.tasksPath(""), c.body)
		got := res.wantError(t, http.StatusUnprocessableEntity, "invalid")
		if !maps.Equal(got.Fields, c.want) {
			t.Errorf("%s: fields\n got %v\nwant %v", c.name, got.Fields, c.want)
		}
	}
	if n := countRows(t, e.db, `SELECT count(*) FROM tasks`); n != 0 {
		t.Fatalf("%d tasks created by invalid requests", n)
	}

	// Limits are counted in characters, not bytes.
	valid := []struct{ name, body, wantTitle string }{
		{"200 two-byte chars", `{"title":"` + strings.Repeat("é", 200) + `"}`, strings.Repeat("é", 200)},
		{"200 four-byte chars", `{"title":"` + strings.Repeat("😀", 200) + `"}`, strings.Repeat("😀", 200)},
		{"200 chars after trimming", `{"title":"  ` + strings.Repeat("a", 200) + `  "}`, strings.Repeat("a", 200)},
		{"limits", `{"title":"t","description":"` + strings.Repeat("ж", 1000) + `","tags":` + tags(20) + `}`, "t"},
		{"50-char tag", `{"title":"t","tags":["` + strings.Repeat("ü", 50) + `"]}`, "t"},
		{"a surrogate pair", `{"title":"\ud83d\ude00 ok"}`, "😀 ok"},
		{"21 tags, 20 after dropping repeats", `{"title":"t","tags":["A"," a ",` + tags(19)[1:] + `}`, "t"},
	}
	for _, c := range valid {
		res := alice.do(t, http.MethodPost, alice.tasksPath(""), c.body)
		res.wantStatus(t, http.StatusCreated)
		if got := res.task(t); got.Title != c.wantTitle {
			t.Errorf("%s: title %q", c.name, got.Title)
		}
	}
	var chars, bytes int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT char_length(title), octet_length(title) FROM tasks ORDER BY id LIMIT 1 OFFSET 1`).Scan(&chars, &bytes); err != nil {
		t.Fatal(err)
	}
	if chars != 200 || bytes != 800 {
		t.Errorf("stored emoji title: %d chars %d bytes, want 200 and 800", chars, bytes)
	}
	last := alice.do(t, http.MethodGet, alice.tasksPath("?sort=created&order=desc&limit=1"), "").tasks(t)
	if len(last) != 1 || len(last[0].Tags) != 20 || last[0].Tags[0] != "A" {
		t.Errorf("deduplicated tags: %+v", last)
	}

	// PATCH validates the merged task the same way and changes nothing.
	task := alice.create(t, `{"title":"patch me"}`)
	one := alice.tasksPath(idPath(task.ID))
	for _, c := range []struct {
		body string
		want map[string]string
	}{
		{`{"title":"  "}`, map[string]string{"title": blank}},
		{`{"priority":"none","tags":["` + strings.Repeat("x", 51) + `"]}`, map[string]string{"priority": oneOf, "tags[0]": long50}},
	} {
		got := alice.do(t, http.MethodPatch, one, c.body).wantError(t, http.StatusUnprocessableEntity, "invalid")
		if !maps.Equal(got.Fields, c.want) {
			t.Errorf("PATCH %s: fields %v, want %v", c.body, got.Fields, c.want)
		}
	}
	if got := alice.get(t, task.ID); got.Version != 1 || got.Title != "patch me" {
		t.Errorf("invalid PATCH changed the task: %+v", got)
	}
}

// TestHTTPTaskJSONRoundTrip checks that Task's JSON methods are inverse for
// what the API writes.
func TestHTTPTaskJSONRoundTrip(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	res := alice.do(t, http.MethodPost, alice.tasksPath(""), `{"title":"t","tags":["a"],"due_date":"2026-03-04T05:06:07.123456Z"}`)
	res.wantStatus(t, http.StatusCreated)
	again, err := json.Marshal(res.task(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mustJSONMap(t, again), res.jsonObject(t)) {
		t.Errorf("re-encoded %s\nwant %s", again, res.body)
	}
}

// Chunked bodies (no Content-Length) get the same checks as sized ones.
func TestHTTPChunkedBodies(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	task := alice.create(t, `{"title":"chunked"}`)
	send := func(method, path, body, contentType string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, io.NopCloser(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // sent chunked
		req.Header.Set("Authorization", "Bearer "+alice.token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := send(http.MethodPost, alice.tasksPath(""), `{"title":"x"}`, ""); got != http.StatusUnsupportedMediaType {
		t.Errorf("chunked JSON without Content-Type: %d, want 415", got)
	}
	if got := send(http.MethodPatch, alice.tasksPath(idPath(task.ID)+"/complete"), "", ""); got != http.StatusOK {
		t.Errorf("chunked empty complete: %d, want 200 (toggle)", got)
	}
	if !alice.get(t, task.ID).Completed {
		t.Error("the empty chunked complete did not toggle")
	}
	if got := send(http.MethodPost, alice.tasksPath(""), "", "application/json"); got != http.StatusBadRequest {
		t.Errorf("empty create: %d, want 400", got)
	}
}
