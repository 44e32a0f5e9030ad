package tasks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"tasksync"
)

// List limits.
const (
	DefaultLimit = 100
	MaxLimit     = 500
	MaxQuery     = 200
)

// Status filters tasks by completion.
type Status string

// The status filters.
const (
	StatusAll       Status = "all"
	StatusPending   Status = "pending"
	StatusCompleted Status = "completed"
)

// ListQuery selects, orders and pages a user's tasks.
type ListQuery struct {
	Status     Status
	Priorities []Priority // any of these; empty = all
	Tags       []string   // tasks carrying every one of these tags (case-insensitive)
	Search     string     // substring of title or description, case-insensitive
	DueBefore  *time.Time // due_at < DueBefore
	DueAfter   *time.Time // due_at > DueAfter
	Sort       string     // created, updated, title, due_date, priority
	Desc       bool
	Limit      int
	Cursor     string // from Page.NextCursor of the previous page
}

// Page is one page of a list.
type Page struct {
	Tasks []Task `json:"tasks"`
	// NextCursor is empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

type sortKey struct {
	asc, desc string // SQL expressions; ends in NULLS LAST semantics for due_date
	cast      string // how a cursor value is cast back
}

// priorityRank orders priorities high > medium > low, not alphabetically.
const priorityRank = "(CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END)::smallint"

var sortKeys = map[string]sortKey{
	"created":  {"created_at", "created_at", "timestamptz"},
	"updated":  {"updated_at", "updated_at", "timestamptz"},
	"title":    {"lower(title)", "lower(title)", "text"},
	"due_date": {"coalesce(due_at, 'infinity'::timestamptz)", "coalesce(due_at, '-infinity'::timestamptz)", "timestamptz"},
	"priority": {priorityRank, priorityRank, "smallint"},
}

// ParseListQuery reads list parameters from a query string (REST) or from
// the filter object of a socket list frame. Every bad parameter is reported
// at once, keyed by its name.
func ParseListQuery(v url.Values) (ListQuery, error) {
	q := ListQuery{Status: StatusAll, Sort: "created", Limit: DefaultLimit}
	bad := map[string]string{}
	one := func(name string) string { return strings.TrimSpace(v.Get(name)) }

	switch s := Status(strings.ToLower(one("status"))); s {
	case "":
	case StatusAll, StatusPending, StatusCompleted:
		q.Status = s
	default:
		bad["status"] = "must be one of all, pending, completed"
	}
	for _, raw := range v["priority"] {
		for _, p := range strings.Split(raw, ",") {
			switch pr := Priority(strings.ToLower(strings.TrimSpace(p))); pr {
			case PriorityLow, PriorityMedium, PriorityHigh:
				q.Priorities = append(q.Priorities, pr)
			case "":
			default:
				bad["priority"] = "must be low, medium or high (comma-separated for several)"
			}
		}
	}
	for _, tag := range v["tag"] {
		if tag = strings.TrimSpace(tag); tag != "" {
			if len([]rune(tag)) > MaxTag {
				bad["tag"] = fmt.Sprintf("must be at most %d characters", MaxTag)
			} else if !storableText(tag) {
				bad["tag"] = notText
			}
			q.Tags = append(q.Tags, tag)
		}
	}
	if len(q.Tags) > MaxTags {
		bad["tag"] = fmt.Sprintf("at most %d tags", MaxTags)
	}
	q.Search = one("q")
	if len([]rune(q.Search)) > MaxQuery {
		bad["q"] = fmt.Sprintf("must be at most %d characters", MaxQuery)
	} else if !storableText(q.Search) {
		bad["q"] = notText
	}
	for name, dst := range map[string]**time.Time{"due_before": &q.DueBefore, "due_after": &q.DueAfter} {
		if s := one(name); s != "" {
			t, err := ParseTime(s)
			if err != nil {
				bad[name] = err.Error()
			} else {
				*dst = &t
			}
		}
	}
	if s := strings.ToLower(one("sort")); s != "" {
		if _, ok := sortKeys[s]; ok {
			q.Sort = s
		} else {
			bad["sort"] = "must be one of created, updated, title, due_date, priority"
		}
	}
	switch o := strings.ToLower(one("order")); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		bad["order"] = "must be asc or desc"
	}
	if s := one("limit"); s != "" {
		n, ok := ParseID(s) // digits only, like every number read from text
		if !ok || n > MaxLimit {
			bad["limit"] = fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)
		} else {
			q.Limit = int(n)
		}
	}
	q.Cursor = one("cursor")
	if q.Cursor != "" {
		if c, err := decodeCursor(q.Cursor); err != nil {
			bad["cursor"] = "is not a cursor returned by this server"
		} else if _, sortOK := bad["sort"]; !sortOK && (c.Sort != q.Sort || c.Desc != q.Desc) {
			bad["cursor"] = "was made for another sort or order"
		}
	}
	if len(bad) > 0 {
		return ListQuery{}, &tasksync.Error{Code: tasksync.CodeBadRequest, Message: "invalid list parameters", Fields: bad}
	}
	return q, nil
}

// cursor is the position after the last task of a page.
type cursor struct {
	Sort string `json:"s"`
	Desc bool   `json:"d,omitempty"`
	Key  string `json:"k"` // the sort expression's value as Postgres text
	ID   int64  `json:"i"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	if _, ok := sortKeys[c.Sort]; !ok || c.ID <= 0 || len(c.Key) > 1024 {
		return c, fmt.Errorf("bad cursor")
	}
	return c, nil
}

// List returns one page of userID's tasks.
func (s *Service) List(ctx context.Context, userID string, q ListQuery) (Page, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	if q.Sort == "" {
		q.Sort = "created"
	}
	key := sortKeys[q.Sort]
	expr, dir, cmp := key.asc, "ASC", ">"
	if q.Desc {
		expr, dir, cmp = key.desc, "DESC", "<"
	}
	args := []any{userID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var where strings.Builder
	where.WriteString("user_id = $1")
	switch q.Status {
	case StatusPending:
		where.WriteString(" AND NOT completed")
	case StatusCompleted:
		where.WriteString(" AND completed")
	}
	if len(q.Priorities) > 0 {
		ps := make([]string, len(q.Priorities))
		for i, p := range q.Priorities {
			ps[i] = string(p)
		}
		where.WriteString(" AND priority = ANY(" + arg(ps) + "::text[])")
	}
	for _, tag := range q.Tags {
		// Tags keep the case they were typed in but match ignoring it,
		// as they are de-duplicated ignoring it.
		where.WriteString(" AND EXISTS (SELECT 1 FROM unnest(tags) AS t WHERE lower(t) = lower(" + arg(tag) + "))")
	}
	if q.Search != "" {
		p := arg("%" + escapeLike(q.Search) + "%")
		where.WriteString(" AND (title ILIKE " + p + " OR description ILIKE " + p + ")")
	}
	if q.DueBefore != nil {
		where.WriteString(" AND due_at < " + arg(*q.DueBefore))
	}
	if q.DueAfter != nil {
		where.WriteString(" AND due_at > " + arg(*q.DueAfter))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil || c.Sort != q.Sort || c.Desc != q.Desc {
			return Page{}, tasksync.Errorf(tasksync.CodeBadRequest, "invalid cursor")
		}
		fmt.Fprintf(&where, " AND (%s, id) %s (%s::%s, %s)", expr, cmp, arg(c.Key), key.cast, arg(c.ID))
	}
	sql := fmt.Sprintf(`SELECT %s, (%s)::text AS sort_key FROM tasks WHERE %s ORDER BY %s %s, id %s LIMIT %s`,
		columns, expr, where.String(), expr, dir, dir, arg(q.Limit+1))

	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, listError(err, q)
	}
	page := Page{Tasks: make([]Task, 0, min(q.Limit, 64))}
	var lastKey string
	for rows.Next() {
		if len(page.Tasks) == q.Limit {
			// One more row than asked for: there is a next page.
			last := page.Tasks[len(page.Tasks)-1]
			page.NextCursor = cursor{Sort: q.Sort, Desc: q.Desc, Key: lastKey, ID: last.ID}.encode()
			break
		}
		var t Task
		if err := rows.Scan(append(scanDest(&t), &lastKey)...); err != nil {
			rows.Close()
			return Page{}, fmt.Errorf("list tasks: %w", err)
		}
		if t.Tags == nil {
			t.Tags = []string{}
		}
		page.Tasks = append(page.Tasks, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Page{}, listError(err, q)
	}
	return page, nil
}

// listError reports a cursor whose key Postgres cannot read back as a value
// of the sort's type (decodeCursor checks only the cursor's shape, so a
// forged or damaged cursor gets this far) as the client's mistake, not as
// an internal error.
func listError(err error, q ListQuery) error {
	var pgErr *pgconn.PgError
	if q.Cursor != "" && errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") { // class 22: data exception
		return &tasksync.Error{Code: tasksync.CodeBadRequest, Message: "invalid list parameters",
			Fields: map[string]string{"cursor": "is not a cursor returned by this server"}}
	}
	return fmt.Errorf("list tasks: %w", err)
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
