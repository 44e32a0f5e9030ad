package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"tasksync"
	"tasksync/tasks"
)

// handler answers one type of client frame: the reply frame to send, or
// an error for an error frame, or neither (the answer comes later, as for
// sync).
type handler struct {
	serve func(ctx context.Context, s *session, f inFrame) ([]byte, error)
	// inline handlers are cheap and never block: they run on the reader.
	// The others run on a request goroutine, at most MaxInFlight at once.
	inline bool
}

// readLoop reads client frames until the socket fails or closes. Cheap
// frames are answered here; the others run on request goroutines, so that
// reading (and with it pongs and close frames) never waits for a request.
func (s *session) readLoop() {
	violations := 0
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			code := websocket.CloseStatus(err)
			if code == -1 {
				code = websocket.StatusAbnormalClosure
			}
			if errors.Is(err, websocket.ErrMessageTooBig) {
				code = CloseTooBig
			}
			s.ended(code)
			return
		}
		if !s.limiter.Allow() {
			violations++
			s.srv.metrics.framesIn.WithLabelValues("rate_limited").Inc()
			if violations > s.srv.cfg.FrameBurst {
				s.close(DisconnectRateLimited)
				continue // keep reading until the writer closes the socket
			}
			f, _ := decodeFrame(data)
			r := s.limiter.Reserve()
			wait := r.Delay()
			r.Cancel()
			s.send(encode(errorFrame{Type: TypeError, ID: f.ID, Re: f.Type, Code: tasksync.CodeRateLimited,
				Message: "too many frames; wait retry_after_ms", RetryAfterMS: max(wait.Milliseconds(), 1)}))
			continue
		}
		violations = 0
		if typ != websocket.MessageText {
			s.srv.metrics.framesIn.WithLabelValues("invalid").Inc()
			s.send(encodeError(nil, "", tasksync.Errorf(tasksync.CodeBadRequest, "frames must be JSON text, not binary")))
			continue
		}
		f, err := decodeFrame(data)
		if err != nil {
			s.srv.metrics.framesIn.WithLabelValues("invalid").Inc()
			s.send(encodeError(f.ID, f.Type, err))
			continue
		}
		s.srv.serveFrame(s, f)
	}
}

// handlerTable maps every client frame type to its handler; a type not in
// it is answered bad_request.
func (srv *Server) handlerTable() map[string]handler {
	return map[string]handler{
		TypePing:        {serve: srv.ping, inline: true},
		TypeSync:        {serve: srv.sync, inline: true},
		TypeTaskCreate:  {serve: srv.createTask},
		TypeTaskUpdate:  {serve: srv.updateTask},
		TypeTaskDone:    {serve: srv.completeTask},
		TypeTaskDelete:  {serve: srv.deleteTask},
		TypeTaskList:    {serve: srv.listTasks},
		TypeTaskHistory: {serve: srv.taskHistory},
		TypeTaskRestore: {serve: srv.restoreTask},
		TypeAuthRefresh: {serve: srv.refresh},
		TypePresence:    {serve: srv.presenceList},
		TypeChatSend:    {serve: srv.chatFrame},
		TypeChatCancel:  {serve: srv.chatFrame},
	}
}

// retryAfterInFlight is the retry_after_ms of a request refused because
// MaxInFlight requests of the socket are being worked on.
const retryAfterInFlight = 100 * time.Millisecond

// serveFrame answers a well-formed client frame, on the reader for inline
// handlers and on a request goroutine for the others. Replies may then be
// sent in another order than the requests came: the id echo is the
// contract (docs/PROTOCOL.md).
func (srv *Server) serveFrame(s *session, f inFrame) {
	h, ok := srv.handlers[f.Type]
	if !ok {
		srv.metrics.framesIn.WithLabelValues("invalid").Inc()
		s.send(encodeError(f.ID, f.Type, tasksync.Errorf(tasksync.CodeBadRequest, "unknown frame type %q; see docs/PROTOCOL.md", f.Type)))
		return
	}
	srv.metrics.framesIn.WithLabelValues(f.Type).Inc()
	if h.inline {
		srv.answer(s, f, h)
		return
	}
	if int(s.inFlight.Add(1)) > srv.cfg.MaxInFlight {
		s.inFlight.Add(-1)
		s.send(encode(errorFrame{Type: TypeError, ID: f.ID, Re: f.Type, Code: tasksync.CodeRateLimited,
			Message:      "too many requests in flight on this socket; wait for replies, then resend",
			RetryAfterMS: retryAfterInFlight.Milliseconds()}))
		return
	}
	s.wg.Go(func() {
		defer s.inFlight.Add(-1)
		srv.answer(s, f, h)
	})
}

// answer runs h and sends its reply or error.
func (srv *Server) answer(s *session, f inFrame, h handler) {
	ctx, cancel := context.WithTimeout(s.ctx, srv.cfg.RequestTimeout)
	defer cancel()
	reply, err := h.serve(ctx, s, f)
	if err != nil {
		err = requestError(ctx, err)
		if level, ok := tasksync.LogLevel(err); ok {
			srv.logger.Log(ctx, level, "socket request failed", "session", s.id, "type", f.Type, "err", err)
		}
		s.send(encodeError(f.ID, f.Type, err))
		return
	}
	if reply != nil {
		s.send(reply)
	}
}

// requestError turns a request that ran out of time into unavailable: the
// client retries (with the same mutation_id). The task service reports a
// mutation's real outcome whatever happens to ctx, so this never hides a
// change that was made.
func requestError(ctx context.Context, err error) error {
	if tasksync.ErrorCode(err) != tasksync.CodeInternal {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return fmt.Errorf("%w: %w", tasksync.Errorf(tasksync.CodeUnavailable, "the request timed out; retry it (with the same mutation_id)"), err)
	}
	return err
}

type replyFrame struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id,omitempty"`
	Re       string          `json:"re"`
	Op       tasks.Op        `json:"op,omitempty"`
	Task     *tasks.Task     `json:"task,omitempty"`
	TaskID   int64           `json:"task_id,omitempty"`
	Replayed bool            `json:"replayed,omitempty"`
}

type listReplyFrame struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	Re         string          `json:"re"`
	Tasks      []tasks.Task    `json:"tasks"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

type historyReplyFrame struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id,omitempty"`
	Re       string          `json:"re"`
	TaskID   int64           `json:"task_id"`
	Versions []tasks.Version `json:"versions"`
}

type pongFrame struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id,omitempty"`
	ServerTime time.Time       `json:"server_time"`
}

type presenceReplyFrame struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id,omitempty"`
	Re       string          `json:"re"`
	Online   int             `json:"online"`
	Sessions []PresenceEntry `json:"sessions"`
}

type refreshReplyFrame struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id,omitempty"`
	Re        string          `json:"re"`
	ExpiresAt *time.Time      `json:"expires_at"`
}

func (srv *Server) ping(_ context.Context, _ *session, f inFrame) ([]byte, error) {
	return encode(pongFrame{Type: TypePong, ID: f.ID, ServerTime: time.Now().UTC()}), nil
}

// sync restarts the event stream; the answer (synced or a snapshot) comes
// from the fill goroutine.
func (srv *Server) sync(_ context.Context, s *session, f inFrame) ([]byte, error) {
	if f.Since == nil {
		return nil, tasksync.Invalid(map[string]string{"since": "is required: the last seq you applied (0 for everything)"})
	}
	s.requestSync(f.ID, *f.Since)
	return nil, nil
}

// mutationOptions are the guards of a mutation frame; the change log
// records it as made by this socket session.
func mutationOptions(s *session, f inFrame) tasks.MutationOptions {
	return tasks.MutationOptions{IdempotencyKey: f.MutationID, IfVersion: f.BaseVersion, Actor: tasks.ActorSocket, Session: s.id}
}

func mutationReply(f inFrame, res tasks.Result, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return encode(replyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, Op: res.Op, Task: res.Task, TaskID: res.TaskID, Replayed: res.Replayed}), nil
}

func needTask(f inFrame) error {
	if f.TaskID <= 0 {
		return tasksync.Invalid(map[string]string{"task_id": "is required: the id of one of your tasks"})
	}
	return nil
}

func (srv *Server) createTask(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	fields, err := taskFields(f.Task)
	if err != nil {
		return nil, err
	}
	res, err := srv.tasks.Create(ctx, s.userID, fields, mutationOptions(s, f))
	return mutationReply(f, res, err)
}

func (srv *Server) updateTask(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if err := needTask(f); err != nil {
		return nil, err
	}
	fields, err := taskFields(f.Task)
	if err != nil {
		return nil, err
	}
	res, err := srv.tasks.Update(ctx, s.userID, f.TaskID, fields, mutationOptions(s, f))
	return mutationReply(f, res, err)
}

func (srv *Server) completeTask(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if err := needTask(f); err != nil {
		return nil, err
	}
	res, err := srv.tasks.SetCompleted(ctx, s.userID, f.TaskID, f.Completed, mutationOptions(s, f))
	return mutationReply(f, res, err)
}

func (srv *Server) deleteTask(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if err := needTask(f); err != nil {
		return nil, err
	}
	scope, err := tasks.ParseDeleteScope(f.Series)
	if err != nil {
		return nil, err
	}
	var res tasks.Result
	if scope == tasks.DeleteSeries {
		res, err = srv.tasks.DeleteSeries(ctx, s.userID, f.TaskID, mutationOptions(s, f))
	} else {
		res, err = srv.tasks.Delete(ctx, s.userID, f.TaskID, mutationOptions(s, f))
	}
	return mutationReply(f, res, err)
}

func (srv *Server) listTasks(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	values, err := filterValues(f.Filter)
	if err != nil {
		return nil, err
	}
	q, err := tasks.ParseListQuery(values)
	if err != nil {
		return nil, err
	}
	page, err := srv.tasks.List(ctx, s.userID, q)
	if err != nil {
		return nil, err
	}
	return encode(listReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, Tasks: page.Tasks, NextCursor: page.NextCursor}), nil
}

// taskFields decodes the task object of a create/update frame.
func taskFields(raw json.RawMessage) (tasks.Fields, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return tasks.Fields{}, tasksync.Invalid(map[string]string{"task": "is required: an object with the task's fields"})
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return tasks.Fields{}, tasksync.Invalid(map[string]string{"task": "must be an object"})
	}
	return tasks.DecodeFields(m)
}

// refresh swaps the session's token for a newer one of the same user.
func (srv *Server) refresh(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if f.Token == "" {
		return nil, tasksync.Invalid(map[string]string{"token": "is required"})
	}
	id, err := srv.verifier.Verify(ctx, f.Token)
	if err != nil {
		// The socket lives on until the current token expires.
		return nil, err
	}
	if id.UserID != s.userID {
		s.send(encodeError(f.ID, f.Type, tasksync.Errorf(tasksync.CodeForbidden, "the new token belongs to another user")))
		s.close(DisconnectForbidden)
		return nil, nil
	}
	var exp *time.Time
	if id.ExpiresAt.IsZero() {
		s.expiresAt.Store(0)
	} else {
		e := id.ExpiresAt.UTC()
		exp = &e
		s.expiresAt.Store(e.UnixNano())
	}
	return encode(refreshReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, ExpiresAt: exp}), nil
}

func (srv *Server) presenceList(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	list, err := srv.hub.presence.list(ctx, s.userID)
	if err != nil {
		return nil, tasksync.Errorf(tasksync.CodeUnavailable, "presence is unavailable right now; task sync is not affected")
	}
	return encode(presenceReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, Online: len(list), Sessions: list}), nil
}

func (srv *Server) taskHistory(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if err := needTask(f); err != nil {
		return nil, err
	}
	limit := 0
	if len(f.Limit) > 0 && string(f.Limit) != "null" {
		n, err := tasks.ParseHistoryLimit(string(f.Limit))
		if err != nil {
			return nil, tasksync.Invalid(map[string]string{"limit": fmt.Sprintf("must be a whole number from 1 to %d", tasks.MaxHistoryLimit)})
		}
		limit = n
	}
	h, err := srv.tasks.History(ctx, s.userID, f.TaskID, limit)
	if err != nil {
		return nil, err
	}
	return encode(historyReplyFrame{Type: TypeReply, ID: f.ID, Re: f.Type, TaskID: h.TaskID, Versions: h.Versions}), nil
}

func (srv *Server) restoreTask(ctx context.Context, s *session, f inFrame) ([]byte, error) {
	if err := needTask(f); err != nil {
		return nil, err
	}
	version, err := tasks.DecodeRestoreVersion(f.Version)
	if err != nil {
		return nil, err
	}
	res, err := srv.tasks.Restore(ctx, s.userID, f.TaskID, version, mutationOptions(s, f))
	return mutationReply(f, res, err)
}
