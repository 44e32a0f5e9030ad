package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"tasksync/chat"
	"tasksync/tasks"
)

// delete_task takes series: "this" skips one occurrence of a recurring
// task (the next one is created), "all" deletes the whole series.
func TestDeleteTaskSeries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chat.Offline{}, chat.Config{})
	ctx := context.Background()
	due := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	rule := "FREQ=DAILY"
	title := "Stretch"
	first, err := e.tasks.Create(ctx, "rex", tasks.Fields{Title: &title, DueAt: &due, DueSet: true, Recurrence: &rule, RecurrenceSet: true}, tasks.MutationOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plain := e.addTask("rex", "Plain")
	call := func(args string) string {
		t.Helper()
		res, _ := e.tools.Call(ctx, "rex", chat.ToolDeleteTask, json.RawMessage(args))
		return string(res)
	}
	if got, want := call(fmt.Sprintf(`{"task_id": %d, "series": "sometimes"}`, first.TaskID)),
		`{"error":"invalid arguments: series must be \"this\" (the default: this occurrence only) or \"all\" (every task of its series)"}`; got != want {
		t.Fatalf("bad series: %s, want %s", got, want)
	}
	if got, want := call(fmt.Sprintf(`{"task_id": %d, "series": "this"}`, first.TaskID)),
		fmt.Sprintf(`{"task_id":%d,"status":"deleted","title":"Stretch"}`, first.TaskID); got != want {
		t.Fatalf("delete this: %s, want %s", got, want)
	}
	list := e.taskList("rex")
	if len(list) != 2 {
		t.Fatalf("after skipping one occurrence: %v, want the next one and the plain task", list)
	}
	var next tasks.Task
	for _, task := range list {
		if task.ID != plain {
			next = task
		}
	}
	if next.DueAt == nil || !next.DueAt.Equal(due.AddDate(0, 0, 1)) || next.SeriesID == nil || *next.SeriesID != first.TaskID {
		t.Fatalf("next occurrence %+v, want the series' next day", next)
	}
	if got, want := call(fmt.Sprintf(`{"task_id": %d, "series": "all"}`, next.ID)),
		fmt.Sprintf(`{"task_id":%d,"status":"deleted","title":"Stretch"}`, next.ID); got != want {
		t.Fatalf("delete all: %s, want %s", got, want)
	}
	if list := e.taskList("rex"); len(list) != 1 || list[0].ID != plain {
		t.Fatalf("after deleting the series: %v, want only the plain task", list)
	}
}
