package realtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync"
	"tasksync/tasks"
)

// Reminders: delivery of reminders that fired.
//
// A reminder is fired by a job (package reminders) on whichever instance
// runs it: in one transaction it records the reminder in the reminders
// table and NOTIFYs ReminderChannel. Every instance's [Listener] hands the
// notification to its hub's reminder loop, which sends the reminder to
// this instance's sessions of the user (pending: false) and marks it
// delivered. A reminder nobody was connected for stays undelivered; a
// session that connects later makes the loop claim the user's undelivered
// reminders (one UPDATE ... WHERE delivered_at IS NULL RETURNING, so two
// connects on two instances cannot both claim one) and send them with
// pending: true.
//
// Each session remembers the ids of the reminders it was sent, so the live
// path and the claim, which may race for a session that is connecting as a
// reminder fires, send it at most once per session.

// ReminderChannel is the channel the reminder job notifies on; the payload
// is "<reminder id>:<user id>".
const ReminderChannel = "tasksync_reminders"

// Reminder is one fired reminder, with its task as it is now.
type Reminder struct {
	ID       int64
	UserID   string
	RemindAt time.Time // the time it was set for
	Task     tasks.Task
}

// reminderFrame is {"type":"reminder", ...} (docs/PROTOCOL.md).
type reminderFrame struct {
	Type       string     `json:"type"`
	ReminderID string     `json:"reminder_id"`
	Task       tasks.Task `json:"task"`
	RemindAt   string     `json:"remind_at"`
	Pending    bool       `json:"pending"`
}

func encodeReminder(r Reminder, pending bool) []byte {
	return encode(reminderFrame{Type: TypeReminder, ReminderID: strconv.FormatInt(r.ID, 10), Task: r.Task,
		RemindAt: r.RemindAt.UTC().Format(tasks.TimeLayout), Pending: pending})
}

// TaskReader reads one task of a user (tasks.Service).
type TaskReader interface {
	Get(ctx context.Context, userID string, id int64) (tasks.Task, error)
}

// ReminderLog reads and marks the reminders table. Every query is scoped
// by user.
type ReminderLog struct {
	db    *pgxpool.Pool
	tasks TaskReader
}

// NewReminderLog returns a ReminderLog over db; tasks reads the task each
// reminder is sent with.
func NewReminderLog(db *pgxpool.Pool, tasks TaskReader) *ReminderLog {
	return &ReminderLog{db: db, tasks: tasks}
}

// Read returns the reminders of userID among ids, with their tasks. A
// reminder whose task is gone is left out.
func (l *ReminderLog) Read(ctx context.Context, userID string, ids []int64) ([]Reminder, error) {
	rows, err := l.db.Query(ctx, `
		SELECT id, task_id, remind_at FROM reminders WHERE user_id = $1 AND id = ANY($2) ORDER BY id`, userID, ids)
	if err != nil {
		return nil, fmt.Errorf("read reminders: %w", err)
	}
	return l.collect(ctx, userID, rows)
}

// ClaimPending marks every undelivered reminder of userID delivered and
// returns them: whoever claims a reminder sends it.
func (l *ReminderLog) ClaimPending(ctx context.Context, userID string) ([]Reminder, error) {
	rows, err := l.db.Query(ctx, `
		UPDATE reminders SET delivered_at = now()
		WHERE user_id = $1 AND delivered_at IS NULL
		RETURNING id, task_id, remind_at`, userID)
	if err != nil {
		return nil, fmt.Errorf("claim pending reminders: %w", err)
	}
	list, err := l.collect(ctx, userID, rows)
	if err != nil {
		return nil, err
	}
	// RETURNING promises no order: oldest first.
	slices.SortFunc(list, func(a, b Reminder) int { return cmp.Compare(a.ID, b.ID) })
	return list, nil
}

// MarkDelivered records that reminders of userID were sent to a session.
func (l *ReminderLog) MarkDelivered(ctx context.Context, userID string, ids []int64) error {
	if _, err := l.db.Exec(ctx, `
		UPDATE reminders SET delivered_at = now() WHERE user_id = $1 AND id = ANY($2) AND delivered_at IS NULL`, userID, ids); err != nil {
		return fmt.Errorf("mark reminders delivered: %w", err)
	}
	return nil
}

func (l *ReminderLog) collect(ctx context.Context, userID string, rows pgx.Rows) ([]Reminder, error) {
	type row struct {
		id, taskID int64
		at         time.Time
	}
	var found []row
	var r row
	if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.taskID, &r.at}, func() error {
		found = append(found, r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read reminders: %w", err)
	}
	list := make([]Reminder, 0, len(found))
	for _, f := range found {
		t, err := l.tasks.Get(ctx, userID, f.taskID)
		if tasksync.ErrorCode(err) == tasksync.CodeNotFound {
			continue // deleted since it fired (its reminders go with it)
		}
		if err != nil {
			return nil, fmt.Errorf("read reminder's task: %w", err)
		}
		list = append(list, Reminder{ID: f.id, UserID: userID, RemindAt: f.at, Task: t})
	}
	return list, nil
}

// reminderReader is what the hub needs of the reminders table
// (*ReminderLog; a fake in tests).
type reminderReader interface {
	Read(ctx context.Context, userID string, ids []int64) ([]Reminder, error)
	ClaimPending(ctx context.Context, userID string) ([]Reminder, error)
	MarkDelivered(ctx context.Context, userID string, ids []int64) error
}

// reminderTimeout bounds one round of the reminder loop's queries.
const reminderTimeout = 10 * time.Second

// reminderQueue is the work of the hub's reminder loop: reminders that
// fired (from notifications) and users whose undelivered reminders are to
// be claimed (a session connected, or the listener reconnected).
type reminderQueue struct {
	mu     sync.Mutex
	fired  map[int64]string // reminder id -> user
	claims map[string]struct{}
	wake   chan struct{}
}

func (q *reminderQueue) init() {
	q.fired, q.claims, q.wake = map[int64]string{}, map[string]struct{}{}, make(chan struct{}, 1)
}

func (q *reminderQueue) take() (fired map[int64]string, claims map[string]struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	fired, claims = q.fired, q.claims
	q.fired, q.claims = map[int64]string{}, map[string]struct{}{}
	return fired, claims
}

func (q *reminderQueue) addFired(id int64, user string) {
	q.mu.Lock()
	q.fired[id] = user
	q.mu.Unlock()
	signal(q.wake)
}

func (q *reminderQueue) addClaim(user string) {
	q.mu.Lock()
	q.claims[user] = struct{}{}
	q.mu.Unlock()
	signal(q.wake)
}

// claimReminders makes the reminder loop send user's undelivered reminders
// to the user's sessions here (a session was just registered).
func (h *Hub) claimReminders(user string) {
	if h.reminders != nil {
		h.rq.addClaim(user)
	}
}

// ReminderHandler is the [Listener]'s handler of ReminderChannel: it hands
// each notification to the hub's reminder loop, and after every (re)LISTEN
// makes the loop claim the undelivered reminders of every user with a
// session here, since notifications sent while the listener was away are
// lost.
func (h *Hub) ReminderHandler() *ReminderHandler { return &ReminderHandler{hub: h} }

// ReminderHandler: see [Hub.ReminderHandler].
type ReminderHandler struct{ hub *Hub }

// HandleNotification parses "<reminder id>:<user id>" and queues it.
func (rh *ReminderHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	idStr, user, ok := strings.Cut(n.Payload, ":")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if !ok || err != nil || user == "" {
		return fmt.Errorf("bad reminder notification payload %q", n.Payload)
	}
	if rh.hub.reminders == nil {
		return nil
	}
	if list, _ := rh.hub.reg.get(user); len(list) == 0 {
		return nil // nobody here to tell: it stays pending, or another instance delivers it
	}
	rh.hub.rq.addFired(id, user)
	return nil
}

// HandleBacklog runs after every successful LISTEN.
func (rh *ReminderHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	if rh.hub.reminders == nil {
		return nil
	}
	rh.hub.reg.each(func(user string, _ []*session) { rh.hub.rq.addClaim(user) })
	return nil
}

// reminderLoop delivers reminders until ctx ends: the only goroutine that
// reads the reminders table for the hub, so neither the listener nor a
// connecting socket waits for it.
func (h *Hub) reminderLoop(ctx context.Context) error {
	backoff := newBackoff(100*time.Millisecond, 10*time.Second)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.rq.wake:
		}
		fired, claims := h.rq.take()
		if len(fired) == 0 && len(claims) == 0 {
			continue
		}
		if err := h.deliverReminders(ctx, fired, claims); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.logger.Warn("reminders: delivery failed; retrying", "err", err)
			// Put the work back; what was delivered meanwhile is not
			// sent twice (sessions remember what they were sent).
			for id, u := range fired {
				h.rq.addFired(id, u)
			}
			for u := range claims {
				h.rq.addClaim(u)
			}
			if !backoff.wait(ctx) {
				return ctx.Err()
			}
			continue
		}
		backoff.reset()
	}
}

// deliverReminders sends the fired reminders to the sessions here and marks
// them delivered, then claims and sends the pending ones of claims.
func (h *Hub) deliverReminders(ctx context.Context, fired map[int64]string, claims map[string]struct{}) (err error) {
	defer func() {
		if v := recover(); v != nil {
			h.logger.Error("reminders: panic while delivering; continuing", "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, reminderTimeout)
	defer cancel()
	byUser := map[string][]int64{}
	for id, u := range fired {
		byUser[u] = append(byUser[u], id)
	}
	var errs []error
	for user, ids := range byUser {
		if list, _ := h.reg.get(user); len(list) == 0 {
			continue // gone meanwhile: it stays pending for the next connect
		}
		rs, err := h.reminders.Read(ctx, user, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n := h.sendReminders(user, rs, false); n > 0 {
			delivered := make([]int64, 0, len(rs))
			for _, r := range rs {
				delivered = append(delivered, r.ID)
			}
			if err := h.reminders.MarkDelivered(ctx, user, delivered); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for user := range claims {
		if list, _ := h.reg.get(user); len(list) == 0 {
			continue
		}
		rs, err := h.reminders.ClaimPending(ctx, user)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h.sendReminders(user, rs, true)
	}
	return errors.Join(errs...)
}

// sendReminders queues each reminder on every session of user here that
// has not had it; it returns the number of sessions it was queued on.
func (h *Hub) sendReminders(user string, rs []Reminder, pending bool) int {
	list, _ := h.reg.get(user)
	n := 0
	for _, r := range rs {
		frame := encodeReminder(r, pending)
		for _, s := range list {
			if s.sendReminder(r.ID, frame) {
				n++
			}
		}
		h.logger.Debug("reminder delivered", slog.Int64("reminder", r.ID), slog.Int64("task", r.Task.ID),
			slog.Bool("pending", pending), slog.Int("sessions", len(list)))
	}
	return n
}

// sendReminder queues a reminder frame unless this session was sent the
// same reminder already; it reports whether it queued it.
func (s *session) sendReminder(id int64, frame []byte) bool {
	s.remMu.Lock()
	if _, ok := s.reminded[id]; ok {
		s.remMu.Unlock()
		return false
	}
	if s.reminded == nil {
		s.reminded = map[int64]struct{}{}
	}
	s.reminded[id] = struct{}{}
	s.remMu.Unlock()
	return s.send(frame)
}
