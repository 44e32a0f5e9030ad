package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Priority is low, medium (the default) or high.
type Priority string

// The priorities, in rank order.
const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
)

// TimeLayout is how task times appear in JSON: UTC with exactly six
// fractional digits, the precision Postgres stores. The change-log trigger
// (tasksync_time in migrations) writes the same layout, so a task read over
// REST and the same task carried by an event have identical timestamps.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Task is one todo item of one user.
type Task struct {
	ID          int64
	UserID      string
	Title       string
	Description string
	Completed   bool
	Priority    Priority
	Tags        []string
	// DueAt is when the task is due; JSON carries it twice, as due_at and
	// (for date-only clients) due_date.
	DueAt *time.Time
	// RemindAt is the absolute time of the task's one reminder.
	RemindAt *time.Time
	// Recurrence is an RFC 5545 RRULE without the "RRULE:" prefix,
	// evaluated from DueAt in TZ.
	Recurrence *string
	// TZ is an IANA zone name; nil means UTC.
	TZ *string
	// SeriesID is the id of the first task of a recurring series, shared
	// by every occurrence; set by the server, never by clients.
	SeriesID  *int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version starts at 1 and grows by one with every change; it is the
	// task's ETag and the base_version of socket updates.
	Version int
}

// ParseID reads an id (of a task, a conversation, ...) as text: a path
// segment, a query parameter, a string a client sent. Only the canonical
// spelling is accepted, plain decimal digits without sign, spaces or
// leading zeros, from 1 to MaxInt64, so that one id has one spelling (in
// URLs, caches, logs and rate limits alike) and "+1", " 1", "01" or "1e0"
// do not name task 1. strconv.ParseInt alone accepts a sign.
func ParseID(s string) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// ETag returns the task's version as a strong HTTP entity tag.
func (t Task) ETag() string { return `"` + strconv.Itoa(t.Version) + `"` }

type taskJSON struct {
	ID          int64    `json:"id"`
	UserID      string   `json:"user_id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Completed   bool     `json:"completed"`
	Priority    Priority `json:"priority"`
	Tags        []string `json:"tags"`
	DueDate     *string  `json:"due_date"`
	DueAt       *string  `json:"due_at"`
	RemindAt    *string  `json:"remind_at"`
	Recurrence  *string  `json:"recurrence"`
	TZ          *string  `json:"tz"`
	SeriesID    *int64   `json:"series_id"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
	Version     int      `json:"version"`
}

// MarshalJSON writes the public shape of a task.
func (t Task) MarshalJSON() ([]byte, error) {
	j := taskJSON{
		ID: t.ID, UserID: t.UserID, Title: t.Title, Description: t.Description,
		Completed: t.Completed, Priority: t.Priority, Tags: t.Tags,
		DueDate: timeText(t.DueAt), DueAt: timeText(t.DueAt), RemindAt: timeText(t.RemindAt),
		Recurrence: t.Recurrence, TZ: t.TZ, SeriesID: t.SeriesID,
		CreatedAt: t.CreatedAt.UTC().Format(TimeLayout),
		UpdatedAt: t.UpdatedAt.UTC().Format(TimeLayout),
		Version:   t.Version,
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	return json.Marshal(j)
}

func timeText(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(TimeLayout)
	return &s
}

func parseTimeText(key string, s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &t, nil
}

// UnmarshalJSON reads the public shape of a task (clients in Go, tests).
func (t *Task) UnmarshalJSON(b []byte) error {
	var j taskJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	created, err := time.Parse(time.RFC3339Nano, j.CreatedAt)
	if err != nil {
		return fmt.Errorf("created_at: %w", err)
	}
	updated, err := time.Parse(time.RFC3339Nano, j.UpdatedAt)
	if err != nil {
		return fmt.Errorf("updated_at: %w", err)
	}
	*t = Task{
		ID: j.ID, UserID: j.UserID, Title: j.Title, Description: j.Description,
		Completed: j.Completed, Priority: j.Priority, Tags: j.Tags,
		Recurrence: j.Recurrence, TZ: j.TZ, SeriesID: j.SeriesID,
		CreatedAt: created, UpdatedAt: updated, Version: j.Version,
	}
	// due_at and due_date are the same field; a writer older than due_at
	// sent only due_date.
	due := j.DueAt
	key := "due_at"
	if due == nil {
		due, key = j.DueDate, "due_date"
	}
	if t.DueAt, err = parseTimeText(key, due); err != nil {
		return err
	}
	if t.RemindAt, err = parseTimeText("remind_at", j.RemindAt); err != nil {
		return err
	}
	return nil
}
