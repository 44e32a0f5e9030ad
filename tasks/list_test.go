package tasks

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"tasksync/internal/testdb"
)

func TestListFilters(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	for _, body := range []string{
		`{"title":"Buy milk","description":"from the shop","priority":"high","tags":["home","errands"],"due_date":"2026-01-10T12:00:00Z"}`,
		`{"title":"Write report","description":"Q3 numbers","tags":["work"],"due_date":"2026-01-15T09:00:00Z","completed":true}`,
		`{"title":"100% done","priority":"low","tags":["work","home"]}`,
		`{"title":"snake_case rename","description":"refactor","priority":"high","tags":["work","code"],"due_date":"2026-01-10","completed":true}`,
		`{"title":"Call mom","description":"about the MILK recipe","priority":"low","due_date":"2026-02-01"}`,
		`{"title":"back\\slash","description":"path c:\\temp"}`,
		`{"title":"50 percent","description":"half_way"}`,
		`{"title":"make coffee","priority":"low"}`,
	} {
		alice.create(t, body)
	}
	// Another user's matching tasks never show up.
	bob := e.as(t, "bob")
	bob.create(t, `{"title":"Buy milk","priority":"high","tags":["home","work"],"due_date":"2026-01-10T12:00:00Z"}`)

	all := []string{"Buy milk", "Write report", "100% done", "snake_case rename", "Call mom", `back\slash`, "50 percent", "make coffee"}
	cases := []struct {
		query string
		want  []string
	}{
		{"", all},
		{"status=all", all},
		{"status=pending", []string{"Buy milk", "100% done", "Call mom", `back\slash`, "50 percent", "make coffee"}},
		{"status=%20Completed%20", []string{"Write report", "snake_case rename"}},
		{"priority=high", []string{"Buy milk", "snake_case rename"}},
		{"priority=low,high", []string{"Buy milk", "100% done", "snake_case rename", "Call mom", "make coffee"}},
		{"priority=%20HIGH%20,%20low", []string{"Buy milk", "100% done", "snake_case rename", "Call mom", "make coffee"}},
		{"priority=medium&priority=high", []string{"Buy milk", "Write report", "snake_case rename", `back\slash`, "50 percent"}},
		{"priority=medium,", []string{"Write report", `back\slash`, "50 percent"}},
		{"tag=home", []string{"Buy milk", "100% done"}},
		{"tag=work", []string{"Write report", "100% done", "snake_case rename"}},
		{"tag=work&tag=home", []string{"100% done"}},
		{"tag=work&tag=code", []string{"snake_case rename"}},
		{"tag=errands&tag=work", nil},
		{"tag=nope", nil},
		{"q=milk", []string{"Buy milk", "Call mom"}},
		{"q=MiLK", []string{"Buy milk", "Call mom"}},
		{"q=numbers", []string{"Write report"}},
		{"q=%25", []string{"100% done"}},
		{"q=0%25", []string{"100% done"}},
		{"q=_", []string{"snake_case rename", "50 percent"}},
		{"q=e_c", []string{"snake_case rename"}},
		{"q=%5C", []string{`back\slash`}},
		{"q=c:%5Ctemp", []string{`back\slash`}},
		{"q=%5C%25", nil},
		{"q=nothing+like+this", nil},
		{"due_before=2026-01-15T09:00:00Z", []string{"Buy milk", "snake_case rename"}},
		{"due_before=2026-01-10", nil},
		{"due_before=2026-01-11", []string{"Buy milk", "snake_case rename"}},
		{"due_after=2026-01-10", []string{"Buy milk", "Write report", "Call mom"}},
		{"due_after=2026-01-10T12:00:00%2B01:00", []string{"Buy milk", "Write report", "Call mom"}},
		{"due_after=2026-01-10T12:00:00Z", []string{"Write report", "Call mom"}},
		{"due_after=2026-01-10&due_before=2026-01-20", []string{"Buy milk", "Write report"}},
		{"status=pending&priority=high,low&tag=home&q=MILK&due_before=2027-01-01", []string{"Buy milk"}},
	}
	for _, c := range cases {
		res := alice.do(t, http.MethodGet, alice.tasksPath("?"+c.query), "")
		res.wantStatus(t, http.StatusOK)
		var got []string
		for _, task := range res.tasks(t) {
			if task.UserID != "alice" {
				t.Errorf("?%s: task of %q listed", c.query, task.UserID)
			}
			got = append(got, task.Title)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("?%s:\n got %q\nwant %q", c.query, got, c.want)
		}
	}
}

// seedSortable creates tasks with ties in every sort key: equal titles
// (up to case), equal priorities, missing and equal due dates, and (from
// one INSERT statement) equal created_at and updated_at.
func seedSortable(t *testing.T, e *apiEnv, user string) {
	t.Helper()
	c := e.as(t, user)
	for _, body := range []string{
		`{"title":"bravo","priority":"high","due_date":"2026-03-01"}`,
		`{"title":"Alpha","priority":"low"}`,
		`{"title":"charlie","priority":"high","due_date":"2026-01-01T10:00:00Z","completed":true}`,
		`{"title":"alpha","priority":"medium","due_date":"2026-03-01"}`,
		`{"title":"echo","priority":"medium"}`,
		`{"title":"ALPHA","priority":"high","due_date":"2025-12-31T23:59:59.999999Z"}`,
		`{"title":"delta","priority":"low","due_date":"2026-03-01","completed":true}`,
	} {
		c.create(t, body)
	}
	_, err := e.db.Pool.Exec(t.Context(), `
		INSERT INTO tasks (user_id, title, priority, due_at, completed) VALUES
			($1, 'bravo', 'medium', NULL, false),
			($1, 'Charlie', 'medium', '2026-03-01T00:00:00Z', false),
			($1, 'alpha', 'high', NULL, true),
			($1, 'foxtrot', 'low', '2026-02-01T00:00:00Z', false),
			($1, 'echo', 'medium', NULL, false),
			($1, 'Bravo', 'low', '2026-01-01T10:00:00Z', false),
			($1, 'golf', 'high', NULL, false),
			($1, 'delta', 'medium', '2026-03-01T00:00:00Z', true),
			($1, 'alpha', 'low', NULL, false)`, user)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	// Two more changes so that updated differs from created.
	first := c.do(t, http.MethodGet, c.tasksPath("?limit=2"), "").tasks(t)
	for _, task := range first {
		c.do(t, http.MethodPatch, c.tasksPath(idPath(task.ID)), `{"description":"touched"}`).wantStatus(t, http.StatusOK)
	}
}

// expectedOrder sorts tasks the way the list promises: by the sort key
// (due dates missing last in both directions, priority by rank), ties by id,
// everything reversed for desc.
func expectedOrder(tasks []Task, sort string, desc bool) []int64 {
	rank := map[Priority]int{PriorityLow: 1, PriorityMedium: 2, PriorityHigh: 3}
	byKey := func(a, b Task) int {
		switch sort {
		case "created":
			return a.CreatedAt.Compare(b.CreatedAt)
		case "updated":
			return a.UpdatedAt.Compare(b.UpdatedAt)
		case "title":
			return strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title))
		case "priority":
			return cmp.Compare(rank[a.Priority], rank[b.Priority])
		case "due_date":
			switch {
			case a.DueAt == nil && b.DueAt == nil:
				return 0
			case a.DueAt == nil: // missing sorts last in both orders
				if desc {
					return -1
				}
				return 1
			case b.DueAt == nil:
				if desc {
					return 1
				}
				return -1
			}
			return a.DueAt.Compare(*b.DueAt)
		}
		panic("unknown sort " + sort)
	}
	sorted := slices.Clone(tasks)
	slices.SortFunc(sorted, func(a, b Task) int {
		c := cmp.Or(byKey(a, b), cmp.Compare(a.ID, b.ID))
		if desc {
			return -c
		}
		return c
	})
	ids := make([]int64, len(sorted))
	for i, task := range sorted {
		ids[i] = task.ID
	}
	return ids
}

// walk lists every page of query and returns the ids in order. followLink
// chooses between the Link header and building the URL from X-Next-Cursor.
func walk(t *testing.T, c *apiClient, query url.Values, limit int, followLink bool) []int64 {
	t.Helper()
	query.Set("limit", fmt.Sprint(limit))
	path := c.tasksPath("?" + query.Encode())
	var ids []int64
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("more than 100 pages for %s", query.Encode())
		}
		res := c.do(t, http.MethodGet, path, "")
		res.wantStatus(t, http.StatusOK)
		page := res.tasks(t)
		for _, task := range page {
			ids = append(ids, task.ID)
		}
		next, link := res.header.Get("X-Next-Cursor"), res.header.Get("Link")
		if next == "" {
			if link != "" {
				t.Errorf("%s: Link %q without X-Next-Cursor", path, link)
			}
			if len(page) > limit {
				t.Errorf("%s: last page has %d tasks, limit %d", path, len(page), limit)
			}
			return ids
		}
		if len(page) != limit {
			t.Errorf("%s: a page with a next cursor has %d tasks, want %d", path, len(page), limit)
		}
		target, ok := strings.CutPrefix(link, "<")
		target, rest, ok2 := strings.Cut(target, ">")
		if !ok || !ok2 || rest != `; rel="next"` {
			t.Fatalf("%s: Link %q is not <...>; rel=\"next\"", path, link)
		}
		u, err := url.Parse(target)
		if err != nil || u.Path != c.tasksPath("") || u.Query().Get("cursor") != next {
			t.Fatalf("%s: Link %q does not point at the next page with cursor %q", path, link, next)
		}
		for k := range query {
			if u.Query().Get(k) != query.Get(k) {
				t.Errorf("Link %q lost parameter %s=%s", link, k, query.Get(k))
			}
		}
		if followLink {
			path = target
		} else {
			q := url.Values{}
			for k, v := range query {
				q[k] = v
			}
			q.Set("cursor", next)
			path = c.tasksPath("?" + q.Encode())
		}
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	seedSortable(t, e, "alice")
	seedSortable(t, e, "bob") // interleaved ids of another user
	alice := e.as(t, "alice")
	snapshot, _, err := e.svc.Snapshot(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(snapshot) != 16 {
		t.Fatalf("seeded %d tasks, want 16", len(snapshot))
	}
	var pending []Task
	for _, task := range snapshot {
		if !task.Completed {
			pending = append(pending, task)
		}
	}
	// Sanity: the seed really has the ties this test is about.
	if countRows(t, e.db, `SELECT count(*) - count(DISTINCT created_at) FROM tasks WHERE user_id = 'alice'`) < 5 {
		t.Fatal("seed has no created_at ties")
	}

	for _, sort := range []string{"created", "updated", "title", "due_date", "priority"} {
		for _, desc := range []bool{false, true} {
			order := "asc"
			if desc {
				order = "desc"
			}
			t.Run(sort+"_"+order, func(t *testing.T) {
				t.Parallel()
				want := expectedOrder(snapshot, sort, desc)
				for _, limit := range []int{1, 3, 16, 500} {
					q := url.Values{"sort": {sort}, "order": {order}}
					if got := walk(t, alice, q, limit, limit == 3); !slices.Equal(got, want) {
						t.Errorf("limit %d:\n got %v\nwant %v", limit, got, want)
					}
				}
				q := url.Values{"sort": {sort}, "order": {order}, "status": {"pending"}}
				if got, want := walk(t, alice, q, 2, true), expectedOrder(pending, sort, desc); !slices.Equal(got, want) {
					t.Errorf("pending, limit 2:\n got %v\nwant %v", got, want)
				}
			})
		}
	}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		if got, want := walk(t, alice, url.Values{}, 4, false), expectedOrder(snapshot, "created", false); !slices.Equal(got, want) {
			t.Errorf("default sort:\n got %v\nwant %v", got, want)
		}
	})
}

func TestListCursorErrors(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	seedSortable(t, e, "alice")
	alice := e.as(t, "alice")

	res := alice.do(t, http.MethodGet, alice.tasksPath("?sort=title&limit=2"), "")
	res.wantStatus(t, http.StatusOK)
	cur := res.header.Get("X-Next-Cursor")
	if cur == "" {
		t.Fatal("no cursor on the first page")
	}
	// The cursor works where it was made...
	alice.do(t, http.MethodGet, alice.tasksPath("?sort=title&limit=2&cursor="+cur), "").wantStatus(t, http.StatusOK)

	// ...and nowhere else.
	for _, q := range []string{"", "sort=created", "sort=priority", "sort=title&order=desc", "sort=due_date&order=asc"} {
		res := alice.do(t, http.MethodGet, alice.tasksPath("?"+q+"&cursor="+cur), "")
		got := res.wantError(t, http.StatusBadRequest, "bad_request")
		if got.Fields["cursor"] != "was made for another sort or order" || len(got.Fields) != 1 {
			t.Errorf("?%s with a title cursor: fields %v", q, got.Fields)
		}
	}
	forge := func(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }
	for _, c := range []string{
		"not-base64!",
		forge(`not json`),
		forge(`{"s":"size","k":"1","i":1}`),
		forge(`{"s":"title","k":"a","i":0}`),
		forge(`{"s":"title","k":"a","i":-5}`),
		forge(`{"s":"title","k":"` + strings.Repeat("a", 1025) + `","i":1}`),
	} {
		res := alice.do(t, http.MethodGet, alice.tasksPath("?sort=title&cursor="+url.QueryEscape(c)), "")
		got := res.wantError(t, http.StatusBadRequest, "bad_request")
		if got.Fields["cursor"] != "is not a cursor returned by this server" {
			t.Errorf("cursor %q: fields %v", c, got.Fields)
		}
	}
}

// TestListForgedCursorKey sends cursors that decode but whose key is not a
// value of the sort's type: a client error, never a 500.
func TestListForgedCursorKey(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	seedSortable(t, e, "alice")
	alice := e.as(t, "alice")
	forge := func(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }
	for _, c := range []struct{ sort, cursor string }{
		{"created", forge(`{"s":"created","k":"yesterday-ish","i":1}`)},
		{"updated", forge(`{"s":"updated","k":"","i":1}`)},
		{"due_date", forge(`{"s":"due_date","k":"2026-99-99","i":1}`)},
		{"priority", forge(`{"s":"priority","k":"high","i":1}`)},
		{"priority", forge(`{"s":"priority","k":"99999999","i":1}`)},
		{"title", forge(`{"s":"title","k":"a\u0000b","i":1}`)},
	} {
		res := alice.do(t, http.MethodGet, alice.tasksPath("?sort="+c.sort+"&cursor="+c.cursor), "")
		got := res.wantError(t, http.StatusBadRequest, "bad_request")
		if got.Fields["cursor"] != "is not a cursor returned by this server" {
			t.Errorf("sort %s, forged cursor: fields %v", c.sort, got.Fields)
		}
	}
}

// TestListHostileText sends search text and tags that Postgres cannot hold
// in text (invalid UTF-8, NUL): a client error, never a 500.
func TestListHostileText(t *testing.T) {
	t.Parallel()
	e := newAPI(t, nil)
	alice := e.as(t, "alice")
	alice.create(t, `{"title":"t"}`)
	for _, q := range []string{"q=%FF", "q=a%00b", "tag=%C3%28", "tag=x%00"} {
		res := alice.do(t, http.MethodGet, alice.tasksPath("?"+q), "")
		got := res.wantError(t, http.StatusBadRequest, "bad_request")
		name, _, _ := strings.Cut(q, "=")
		if want := map[string]string{name: "must be UTF-8 text without NUL characters"}; !maps.Equal(got.Fields, want) {
			t.Errorf("?%s: fields %v, want %v", q, got.Fields, want)
		}
	}
}

// TestListDueDateBoundaries pins how date-only bounds are read: midnight UTC.
func TestListDueDateBoundaries(t *testing.T) {
	t.Parallel()
	q, err := ParseListQuery(url.Values{"due_before": {"2026-01-02"}, "due_after": {" 2026-01-01T23:30:00-01:00 "}})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC); q.DueBefore == nil || !q.DueBefore.Equal(want) {
		t.Errorf("DueBefore %v, want %v", q.DueBefore, want)
	}
	if want := time.Date(2026, 1, 2, 0, 30, 0, 0, time.UTC); q.DueAfter == nil || !q.DueAfter.Equal(want) {
		t.Errorf("DueAfter %v, want %v", q.DueAfter, want)
	}
}

// Tags are stored as typed but filtered ignoring case, matching the way
// duplicates are dropped.
func TestTagFilterIgnoresCase(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	svc := NewService(db.Pool)
	ctx := context.Background()
	title := "Call Mom"
	tags := []string{"Home", "Phone"}
	if _, err := svc.Create(ctx, "u", Fields{Title: &title, Tags: &tags}, MutationOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"tag=home", "tag=HOME&tag=phone", "tag=Home"} {
		v, _ := url.ParseQuery(q)
		lq, err := ParseListQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		page, err := svc.List(ctx, "u", lq)
		if err != nil || len(page.Tasks) != 1 || page.Tasks[0].Tags[0] != "Home" {
			t.Fatalf("%s: %v %v", q, page.Tasks, err)
		}
	}
	v, _ := url.ParseQuery("tag=home&tag=work")
	lq, _ := ParseListQuery(v)
	if page, err := svc.List(ctx, "u", lq); err != nil || len(page.Tasks) != 0 {
		t.Fatalf("home+work: %v %v", page.Tasks, err)
	}
}
