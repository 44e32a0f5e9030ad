package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"tasksync"
	"tasksync/internal/utf8json"
	"tasksync/tasks"
)

// TaskService is what the tools need of the task service. *tasks.Service
// satisfies it, so every change made by the assistant or an MCP client
// takes the same write path as REST and sockets, and therefore lands in the
// change log that sockets stream from.
type TaskService interface {
	Create(ctx context.Context, userID string, f tasks.Fields, opts tasks.MutationOptions) (tasks.Result, error)
	Update(ctx context.Context, userID string, id int64, f tasks.Fields, opts tasks.MutationOptions) (tasks.Result, error)
	SetCompleted(ctx context.Context, userID string, id int64, completed *bool, opts tasks.MutationOptions) (tasks.Result, error)
	Delete(ctx context.Context, userID string, id int64, opts tasks.MutationOptions) (tasks.Result, error)
	DeleteSeries(ctx context.Context, userID string, id int64, opts tasks.MutationOptions) (tasks.Result, error)
	List(ctx context.Context, userID string, q tasks.ListQuery) (tasks.Page, error)
	Get(ctx context.Context, userID string, id int64) (tasks.Task, error)
}

// The tool names.
const (
	ToolAddTask      = "add_task"
	ToolListTasks    = "list_tasks"
	ToolCompleteTask = "complete_task"
	ToolUpdateTask   = "update_task"
	ToolDeleteTask   = "delete_task"
)

// ToolSpec describes a tool to a model or an MCP client.
type ToolSpec struct {
	Name        string
	Description string
	// Parameters is a JSON Schema (draft 2020-12 subset that OpenAI
	// function calling and MCP both accept) of the arguments object.
	Parameters json.RawMessage
}

// Limits of the tools.
const (
	// MaxListedTasks bounds list_tasks, so that one result cannot flood the
	// model's context.
	MaxListedTasks = 100
	// toolTimeout bounds one tool call. It runs detached from the turn's
	// cancellation: a started change finishes and is reported.
	toolTimeout = 15 * time.Second
	// maxArgumentBytes bounds the arguments of one call.
	maxArgumentBytes = 16 << 10
)

const taskIDSchema = `{"type": "integer", "minimum": 1, "description": "The id of one of the user's tasks (from list_tasks or an earlier result)."}`

// Pieces of the schemas made from the task service's own limits, so that
// a model and an MCP client see the limits validation applies.
var (
	maxTitle       = strconv.Itoa(tasks.MaxTitle)
	maxDescription = strconv.Itoa(tasks.MaxDescription)
	priorities     = mustJSON([]tasks.Priority{tasks.PriorityLow, tasks.PriorityMedium, tasks.PriorityHigh})
	tagsSchema     = fmt.Sprintf(`{"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": %d}, "maxItems": %d, "description": "Optional labels."}`,
		tasks.MaxTag, tasks.MaxTags)
	// The time fields of add_task and update_task (update_task also
	// takes null, which clears one).
	timeProperties = `"due_at": {"type": %[1]s, "description": "Due time, RFC 3339 with the user's UTC offset (2026-12-03T09:00:00+01:00); a date alone is YYYY-MM-DD. For a recurring task, its first occurrence.%[2]s"},
    "remind_at": {"type": %[1]s, "description": "When to remind the user, RFC 3339 (one reminder; e.g. 30 minutes before due_at).%[2]s"},
    "recurrence": {"type": %[1]s, "maxLength": 500, "description": "Repeat rule, RFC 5545 RRULE without 'RRULE:': FREQ=DAILY, WEEKLY, MONTHLY or YEARLY, with INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, COUNT or UNTIL (every weekday: FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR; every 2 weeks on Friday: FREQ=WEEKLY;INTERVAL=2;BYDAY=FR; every month on the 1st: FREQ=MONTHLY;BYMONTHDAY=1). Needs due_at. Completing an occurrence creates the next one.%[2]s"},
    "tz": {"type": %[1]s, "description": "IANA time zone the times and the rule are meant in (Europe/Berlin), so that 9:00 stays 9:00 across daylight-saving changes. Default: the user's zone.%[2]s"}`
	addTimeProperties    = fmt.Sprintf(timeProperties, `"string"`, " Optional.")
	updateTimeProperties = fmt.Sprintf(timeProperties, `["string", "null"]`, " null clears it.")
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var toolSpecs = []ToolSpec{
	{
		Name:        ToolAddTask,
		Description: "Create a task for the user, optionally with a due time, a reminder, a repeat rule, a priority and tags. Returns {task_id, status: \"created\", title}.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "title": {"type": "string", "minLength": 1, "maxLength": ` + maxTitle + `, "description": "Short title of the task."},
    "description": {"type": "string", "maxLength": ` + maxDescription + `, "description": "Optional details."},
    "priority": {"type": "string", "enum": ` + priorities + `, "description": "Optional; medium when not given."},
    ` + addTimeProperties + `,
    "tags": ` + tagsSchema + `
  },
  "required": ["title"]
}`),
	},
	{
		Name:        ToolListTasks,
		Description: fmt.Sprintf("List the user's tasks, oldest first (at most %d). Returns an array of {id, title, completed, description, priority, due_date, remind_at, recurrence, tz, tags} (times in UTC).", MaxListedTasks),
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "status": {"type": "string", "enum": ["all", "pending", "completed"], "description": "Which tasks: all (default), pending (not completed) or completed."}
  }
}`),
	},
	{
		Name:        ToolCompleteTask,
		Description: "Mark a task as completed. Returns {task_id, status: \"completed\", title}.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {"task_id": ` + taskIDSchema + `},
  "required": ["task_id"]
}`),
	},
	{
		Name:        ToolUpdateTask,
		Description: "Change a task's title, description, priority, due time, reminder, repeat rule, time zone or tags (only the fields given). Returns {task_id, status: \"updated\", title}.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "task_id": ` + taskIDSchema + `,
    "title": {"type": "string", "minLength": 1, "maxLength": ` + maxTitle + `, "description": "New title."},
    "description": {"type": "string", "maxLength": ` + maxDescription + `, "description": "New description (empty clears it)."},
    "priority": {"type": "string", "enum": ` + priorities + `},
    ` + updateTimeProperties + `,
    "tags": ` + tagsSchema + `
  },
  "required": ["task_id"]
}`),
	},
	{
		Name:        ToolDeleteTask,
		Description: "Delete a task for good. For an occurrence of a recurring task, series \"this\" (the default) skips this occurrence (the next one is created when it was not done) and \"all\" deletes every task of the series. Returns {task_id, status: \"deleted\", title}.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "task_id": ` + taskIDSchema + `,
    "series": {"type": "string", "enum": ["this", "all"], "description": "Optional, for recurring tasks: this (default) deletes this occurrence only, all deletes the whole series."}
  },
  "required": ["task_id"]
}`),
	},
}

// Tools runs the five task tools for one user at a time. The user is
// always the caller's authenticated user, given by the code that runs the
// tool; a user_id in the arguments is ignored. A Tools is safe for
// concurrent use.
type Tools struct {
	tasks  TaskService
	logger *slog.Logger
}

// NewTools returns the tools over svc; logger receives internal failures
// (nil: slog.Default()).
func NewTools(svc TaskService, logger *slog.Logger) *Tools {
	if logger == nil {
		logger = slog.Default()
	}
	return &Tools{tasks: svc, logger: logger}
}

// Specs returns the tool descriptions (a copy).
func (t *Tools) Specs() []ToolSpec { return append([]ToolSpec(nil), toolSpecs...) }

// Call runs the tool name for userID with the JSON arguments the model (or
// an MCP client) sent. It never fails: unknown tools, bad arguments and
// domain errors (a task that does not exist, an invalid title) come back
// as {"error": "..."} with isError set, a result the model can read and
// react to. Internal failures are logged and reported as "internal error";
// an outage (the database unreachable) as the retry advice of
// tasksync.AsError, logged as a warning.
func (t *Tools) Call(ctx context.Context, userID, name string, args json.RawMessage) (result json.RawMessage, isError bool) {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	res, err := t.call(ctx, userID, name, args)
	if err != nil {
		return toolError(ctx, t.logger, name, err), true
	}
	b, err := json.Marshal(res)
	if err != nil {
		return toolError(ctx, t.logger, name, fmt.Errorf("encode result: %w", err)), true
	}
	return b, false
}

func toolError(ctx context.Context, logger *slog.Logger, name string, err error) json.RawMessage {
	e := tasksync.AsError(err)
	msg := e.Message
	if level, ok := tasksync.LogLevel(err); ok {
		logger.Log(ctx, level, "chat tool failed", "tool", name, "code", e.Code, "err", err)
	}
	if e.Code == tasksync.CodeInternal {
		msg = "internal error"
	}
	if len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " " + e.Fields[k]
		}
		msg = "invalid arguments: " + strings.Join(parts, "; ")
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	return b
}

// actorKey is the context key of the actor tool calls are made as.
type actorKey struct{}

type toolActor struct{ actor, session string }

// WithActor returns ctx under which Tools.Call logs its changes as made by
// actor (tasks.ActorAssistant, tasks.ActorMCP) in session (the
// conversation id, or ""). Without it, changes are logged as the
// assistant's.
func WithActor(ctx context.Context, actor, session string) context.Context {
	return context.WithValue(ctx, actorKey{}, toolActor{actor, session})
}

// mutationOptions are the options of a change made by a tool call under ctx.
func mutationOptions(ctx context.Context) tasks.MutationOptions {
	a, ok := ctx.Value(actorKey{}).(toolActor)
	if !ok {
		return tasks.MutationOptions{Actor: tasks.ActorAssistant}
	}
	return tasks.MutationOptions{Actor: a.actor, Session: a.session}
}

// zoneKey is the context key of the user's time zone.
type zoneKey struct{}

// WithZone returns ctx under which add_task gives a task with a due time,
// reminder or rule the zone loc when the arguments name none: a model
// that writes "2026-12-03T09:00:00+01:00" and forgets "tz" still makes a
// rule that keeps 9:00 local across daylight-saving changes.
func WithZone(ctx context.Context, loc *time.Location) context.Context {
	if loc == nil {
		return ctx
	}
	return context.WithValue(ctx, zoneKey{}, loc)
}

// defaultZone adds the zone of ctx to add_task arguments that need one.
func (a arguments) defaultZone(ctx context.Context) {
	loc, ok := ctx.Value(zoneKey{}).(*time.Location)
	if !ok {
		return
	}
	if v, ok := a["tz"]; ok && string(v) != "null" {
		return
	}
	for _, k := range []string{"due_at", "due_date", "remind_at", "recurrence"} {
		if v, ok := a[k]; ok && string(v) != "null" {
			a["tz"] = json.RawMessage(mustJSON(loc.String()))
			return
		}
	}
}

// MutationResult is the result of add_task, complete_task, update_task and
// delete_task (the seed contract).
type MutationResult struct {
	TaskID int64  `json:"task_id"`
	Status string `json:"status"`
	Title  string `json:"title"`
}

// ListedTask is one entry of the list_tasks result.
type ListedTask struct {
	ID          int64    `json:"id"`
	Title       string   `json:"title"`
	Completed   bool     `json:"completed"`
	Description string   `json:"description,omitempty"`
	Priority    string   `json:"priority"`
	DueDate     string   `json:"due_date,omitempty"`
	RemindAt    string   `json:"remind_at,omitempty"`
	Recurrence  string   `json:"recurrence,omitempty"`
	TZ          string   `json:"tz,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

func (t *Tools) call(ctx context.Context, userID, name string, raw json.RawMessage) (any, error) {
	args, err := decodeArguments(raw)
	if err != nil {
		return nil, err
	}
	switch name {
	case ToolAddTask:
		args.defaultZone(ctx)
		f, err := args.fields(true)
		if err != nil {
			return nil, err
		}
		res, err := t.tasks.Create(ctx, userID, f, mutationOptions(ctx))
		if err != nil {
			return nil, err
		}
		return MutationResult{TaskID: res.TaskID, Status: "created", Title: res.Task.Title}, nil

	case ToolListTasks:
		status, err := args.status()
		if err != nil {
			return nil, err
		}
		page, err := t.tasks.List(ctx, userID, tasks.ListQuery{Status: status, Sort: "created", Limit: MaxListedTasks})
		if err != nil {
			return nil, err
		}
		out := make([]ListedTask, len(page.Tasks))
		for i, task := range page.Tasks {
			out[i] = ListedTask{ID: task.ID, Title: task.Title, Completed: task.Completed,
				Description: task.Description, Priority: string(task.Priority), Tags: task.Tags}
			if task.DueAt != nil {
				out[i].DueDate = task.DueAt.UTC().Format(time.RFC3339)
			}
			if task.RemindAt != nil {
				out[i].RemindAt = task.RemindAt.UTC().Format(time.RFC3339)
			}
			if task.Recurrence != nil {
				out[i].Recurrence = *task.Recurrence
			}
			if task.TZ != nil {
				out[i].TZ = *task.TZ
			}
		}
		return out, nil

	case ToolCompleteTask:
		id, err := args.taskID()
		if err != nil {
			return nil, err
		}
		done := true
		res, err := t.tasks.SetCompleted(ctx, userID, id, &done, mutationOptions(ctx))
		if err != nil {
			return nil, err
		}
		return MutationResult{TaskID: id, Status: "completed", Title: res.Task.Title}, nil

	case ToolUpdateTask:
		id, err := args.taskID()
		if err != nil {
			return nil, err
		}
		f, err := args.fields(false)
		if err != nil {
			return nil, err
		}
		if f == (tasks.Fields{}) {
			return nil, tasksync.Errorf(tasksync.CodeInvalid, "nothing to update: give a title, description, priority, due_at, remind_at, recurrence, tz or tags")
		}
		res, err := t.tasks.Update(ctx, userID, id, f, mutationOptions(ctx))
		if err != nil {
			return nil, err
		}
		return MutationResult{TaskID: id, Status: "updated", Title: res.Task.Title}, nil

	case ToolDeleteTask:
		id, err := args.taskID()
		if err != nil {
			return nil, err
		}
		// Read first: the result names the task, and a delete result has
		// no task.
		task, err := t.tasks.Get(ctx, userID, id)
		if err != nil {
			return nil, err
		}
		scope, err := args.series()
		if err != nil {
			return nil, err
		}
		del := t.tasks.Delete
		if scope == tasks.DeleteSeries {
			del = t.tasks.DeleteSeries
		}
		opts := mutationOptions(ctx)
		opts.IfVersion = task.Version
		if _, err := del(ctx, userID, id, opts); err != nil {
			if tasksync.ErrorCode(err) == tasksync.CodeVersionMismatch {
				return nil, tasksync.Errorf(tasksync.CodeConflict, "task %d changed while deleting it; list the tasks and try again", id)
			}
			return nil, err
		}
		return MutationResult{TaskID: id, Status: "deleted", Title: task.Title}, nil

	default:
		return nil, tasksync.Errorf(tasksync.CodeNotFound, "unknown tool %q; the tools are add_task, list_tasks, complete_task, update_task, delete_task", name)
	}
}

// arguments is a decoded arguments object. Values stay raw until a tool
// asks for them, so that each tool is lenient in the same way.
type arguments map[string]json.RawMessage

// decodeArguments reads the arguments of a call. Models send an object,
// but sometimes an empty string (no arguments) or a JSON string holding
// the object; both are accepted.
func decodeArguments(raw json.RawMessage) (arguments, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > maxArgumentBytes {
		return nil, tasksync.Errorf(tasksync.CodeInvalid, "arguments are larger than %d bytes", maxArgumentBytes)
	}
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return arguments{}, nil
	}
	if raw[0] == '"' {
		if !utf8json.Valid(raw) {
			// Decoding the string would replace the bad part with
			// U+FFFD before the fields could be checked.
			return nil, tasksync.Errorf(tasksync.CodeInvalid, "arguments must be UTF-8 text: no invalid bytes or lone surrogate escapes")
		}
		var inner string
		if json.Unmarshal(raw, &inner) == nil {
			raw = json.RawMessage(strings.TrimSpace(inner))
			if len(raw) == 0 {
				return arguments{}, nil
			}
		}
	}
	var m arguments
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, tasksync.Errorf(tasksync.CodeInvalid, "arguments must be a JSON object")
	}
	// The user is the authenticated one, whatever the model says.
	delete(m, "user_id")
	return m, nil
}

// taskID reads task_id: a positive integer, or a string holding one
// ("3", "#3"), which models send now and then.
func (a arguments) taskID() (int64, error) {
	raw, ok := a["task_id"]
	if !ok || string(raw) == "null" {
		return 0, tasksync.Invalid(map[string]string{"task_id": "is required: the id of one of the user's tasks"})
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, tasksync.Invalid(map[string]string{"task_id": "must be a whole number"})
		}
		// As text, an id is plain digits (tasks.ParseID): "+1" or "01"
		// is not task 1.
		id, ok := tasks.ParseID(strings.TrimPrefix(strings.TrimSpace(s), "#"))
		if !ok {
			return 0, tasksync.Invalid(map[string]string{"task_id": "must be a positive whole number"})
		}
		return id, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, tasksync.Invalid(map[string]string{"task_id": "must be a whole number"})
	}
	// As a JSON number, what counts is its value (JSON Schema's
	// "integer" includes 3.0), as models write it.
	id, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		// 3.0 is 3.
		f, ferr := strconv.ParseFloat(n.String(), 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, tasksync.Invalid(map[string]string{"task_id": "must be a whole number"})
		}
		id = int64(f)
	}
	if id <= 0 {
		return 0, tasksync.Invalid(map[string]string{"task_id": "must be a positive whole number"})
	}
	return id, nil
}

// series reads the optional scope of delete_task ("this" or "all").
func (a arguments) series() (tasks.DeleteScope, error) {
	raw, ok := a["series"]
	if !ok || string(raw) == "null" {
		return tasks.DeleteThis, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", tasksync.Invalid(map[string]string{"series": `must be "this" or "all"`})
	}
	return tasks.ParseDeleteScope(strings.ToLower(strings.TrimSpace(s)))
}

func (a arguments) status() (tasks.Status, error) {
	raw, ok := a["status"]
	if !ok || string(raw) == "null" {
		return tasks.StatusAll, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", tasksync.Invalid(map[string]string{"status": "must be one of all, pending, completed"})
	}
	switch st := tasks.Status(strings.ToLower(strings.TrimSpace(s))); st {
	case "", tasks.StatusAll:
		return tasks.StatusAll, nil
	case tasks.StatusPending, "incomplete", "open", "todo":
		return tasks.StatusPending, nil
	case tasks.StatusCompleted, "complete", "done":
		return tasks.StatusCompleted, nil
	default:
		return "", tasksync.Invalid(map[string]string{"status": "must be one of all, pending, completed"})
	}
}

// fields reads the editable task fields the tools accept, with the task
// service's own decoder, so that validation is the same as REST's. A
// create needs a title.
func (a arguments) fields(create bool) (tasks.Fields, error) {
	raw := map[string]json.RawMessage{}
	for _, k := range []string{"title", "description", "priority", "due_date", "due_at", "remind_at", "recurrence", "tz", "tags"} {
		if v, ok := a[k]; ok {
			raw[k] = v
		}
	}
	// A model sending "priority": null or "tags": null means "not given";
	// so does null for anything when creating.
	for k, v := range raw {
		if string(v) == "null" && (create || k == "priority" || k == "tags" || k == "title") {
			delete(raw, k)
		}
	}
	f, err := tasks.DecodeFields(raw)
	if err != nil {
		return tasks.Fields{}, err
	}
	if create && (f.Title == nil || strings.TrimSpace(*f.Title) == "") {
		return tasks.Fields{}, tasksync.Invalid(map[string]string{"title": "is required and must not be blank"})
	}
	return f, nil
}

// errorText returns the message of a {"error": "..."} result, or "".
func errorText(result json.RawMessage) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(result, &e) != nil {
		return ""
	}
	return e.Error
}
