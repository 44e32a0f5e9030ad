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
	DueAt       *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
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
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
	Version     int      `json:"version"`
}

// MarshalJSON writes the public shape of a task.
func (t Task) MarshalJSON() ([]byte, error) {
	j := taskJSON{
		ID: t.ID, UserID: t.UserID, Title: t.Title, Description: t.Description,
		Completed: t.Completed, Priority: t.Priority, Tags: t.Tags,
		CreatedAt: t.CreatedAt.UTC().Format(TimeLayout),
		UpdatedAt: t.UpdatedAt.UTC().Format(TimeLayout),
		Version:   t.Version,
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if t.DueAt != nil {
		s := t.DueAt.UTC().Format(TimeLayout)
		j.DueDate = &s
	}
	return json.Marshal(j)
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
		CreatedAt: created, UpdatedAt: updated, Version: j.Version,
	}
	if j.DueDate != nil {
		due, err := time.Parse(time.RFC3339Nano, *j.DueDate)
		if err != nil {
			return fmt.Errorf("due_date: %w", err)
		}
		t.DueAt = &due
	}
	return nil
}
