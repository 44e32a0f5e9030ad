package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync"
	"tasksync/tasks"
)

// Store keeps conversations and messages in Postgres. Every query is
// scoped by the user: a conversation of another user is reported exactly
// like one that does not exist. A Store is safe for concurrent use.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a Store over db.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Conversation is one chat of one user.
type Conversation struct {
	ID        int64
	Title     string
	CreatedAt time.Time
	UpdatedAt time.Time
	// ActiveTurn is the turn being written right now, or "".
	ActiveTurn string
}

type conversationJSON struct {
	ID         int64  `json:"id"`
	Title      string `json:"title"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
	ActiveTurn string `json:"active_turn_id,omitempty"`
}

// MarshalJSON writes the REST shape of a conversation.
func (c Conversation) MarshalJSON() ([]byte, error) {
	return json.Marshal(conversationJSON{ID: c.ID, Title: c.Title,
		CreatedAt: c.CreatedAt.UTC().Format(tasks.TimeLayout), UpdatedAt: c.UpdatedAt.UTC().Format(tasks.TimeLayout),
		ActiveTurn: c.ActiveTurn})
}

// Message is one stored message.
type Message struct {
	ID             int64
	ConversationID int64
	Role           Role
	Content        string
	ToolCalls      []ToolCall
	Status         Status
	Error          *MessageError
	TurnID         string
	CreatedAt      time.Time
}

// MessageError is what the user was told when a turn failed.
type MessageError struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

type messageJSON struct {
	ID             int64         `json:"id"`
	ConversationID int64         `json:"conversation_id"`
	Role           Role          `json:"role"`
	Content        string        `json:"content"`
	ToolCalls      []ToolCall    `json:"tool_calls"`
	Status         Status        `json:"status"`
	Error          *MessageError `json:"error,omitempty"`
	TurnID         string        `json:"turn_id"`
	CreatedAt      string        `json:"created_at"`
}

// MarshalJSON writes the REST shape of a message.
func (m Message) MarshalJSON() ([]byte, error) {
	calls := m.ToolCalls
	if calls == nil {
		calls = []ToolCall{}
	}
	return json.Marshal(messageJSON{ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Content: m.Content,
		ToolCalls: calls, Status: m.Status, Error: m.Error, TurnID: m.TurnID,
		CreatedAt: m.CreatedAt.UTC().Format(tasks.TimeLayout)})
}

// conversationColumns: an expired lease (its instance died) is no turn.
const conversationColumns = `id, title, created_at, updated_at,
	CASE WHEN active_until > now() THEN active_turn ELSE '' END`

func scanConversation(row pgx.Row) (Conversation, error) {
	var c Conversation
	err := row.Scan(&c.ID, &c.Title, &c.CreatedAt, &c.UpdatedAt, &c.ActiveTurn)
	return c, err
}

const messageColumns = `id, conversation_id, role, content, tool_calls, status, error, turn_id, created_at`

func scanMessage(row pgx.Row) (Message, error) {
	var (
		m     Message
		calls []byte
		merr  []byte
	)
	if err := row.Scan(&m.ID, &m.ConversationID, &m.Role, &m.Content, &calls, &m.Status, &merr, &m.TurnID, &m.CreatedAt); err != nil {
		return m, err
	}
	if len(calls) > 0 {
		if err := json.Unmarshal(calls, &m.ToolCalls); err != nil {
			return m, fmt.Errorf("message %d: tool_calls: %w", m.ID, err)
		}
	}
	if len(merr) > 0 {
		m.Error = &MessageError{}
		if err := json.Unmarshal(merr, m.Error); err != nil {
			return m, fmt.Errorf("message %d: error: %w", m.ID, err)
		}
	}
	return m, nil
}

func conversationNotFound(id int64) error {
	return tasksync.Errorf(tasksync.CodeNotFound, "conversation %d not found", id)
}

// BeginTurn claims conversationID for a new turn and stores the user's
// message, in one transaction. With conversationID 0 it creates a
// conversation titled after the message. The claim is a lease that ends
// with [Store.FinishTurn], or after lease unless renewed with
// [Store.RenewTurn] (so that a dead instance's claim expires): while it
// holds, no instance can start another turn in the conversation
// (CodeConflict).
func (s *Store) BeginTurn(ctx context.Context, userID string, conversationID int64, turnID, text string, lease time.Duration) (Conversation, Message, bool, error) {
	var (
		conv    Conversation
		msg     Message
		created bool
	)
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if conversationID == 0 {
			created = true
			conv, err = scanConversation(tx.QueryRow(ctx, `
				INSERT INTO conversations (user_id, title, active_turn, active_until)
				VALUES ($1, $2, $3, now() + make_interval(secs => $4))
				RETURNING `+conversationColumns,
				userID, TitleOf(text), turnID, lease.Seconds()))
			if err != nil {
				return fmt.Errorf("create conversation: %w", err)
			}
		} else {
			conv, err = scanConversation(tx.QueryRow(ctx, `
				UPDATE conversations SET active_turn = $3, active_until = now() + make_interval(secs => $4)
				WHERE user_id = $1 AND id = $2 AND (active_turn IS NULL OR active_until < now())
				RETURNING `+conversationColumns,
				userID, conversationID, turnID, lease.Seconds()))
			if errors.Is(err, pgx.ErrNoRows) {
				var busy bool
				err = tx.QueryRow(ctx, `SELECT active_turn IS NOT NULL FROM conversations WHERE user_id = $1 AND id = $2`,
					userID, conversationID).Scan(&busy)
				if errors.Is(err, pgx.ErrNoRows) {
					return conversationNotFound(conversationID)
				}
				if err != nil {
					return fmt.Errorf("read conversation: %w", err)
				}
				return tasksync.Errorf(tasksync.CodeConflict,
					"the assistant is still answering in conversation %d; wait for chat.done or send chat.cancel", conversationID)
			}
			if err != nil {
				return fmt.Errorf("claim conversation: %w", err)
			}
		}
		msg, err = scanMessage(tx.QueryRow(ctx, `
			INSERT INTO messages (user_id, conversation_id, role, content, turn_id)
			VALUES ($1, $2, 'user', $3, $4)
			RETURNING `+messageColumns,
			userID, conv.ID, text, turnID))
		if err != nil {
			return fmt.Errorf("store user message: %w", err)
		}
		return nil
	})
	if err != nil {
		return Conversation{}, Message{}, false, err
	}
	return conv, msg, created, nil
}

// FinishTurn stores the assistant message of turnID and releases the
// conversation's lease, in one transaction, so that the user can send the
// next message as soon as the reply is known.
func (s *Store) FinishTurn(ctx context.Context, userID string, conversationID int64, turnID string, m Message) (Message, error) {
	var calls, merr []byte
	if len(m.ToolCalls) > 0 {
		b, err := json.Marshal(m.ToolCalls)
		if err != nil {
			return Message{}, fmt.Errorf("encode tool calls: %w", err)
		}
		calls = b
	}
	if m.Error != nil {
		merr, _ = json.Marshal(m.Error)
	}
	var out Message
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		out, err = scanMessage(tx.QueryRow(ctx, `
			INSERT INTO messages (user_id, conversation_id, role, content, tool_calls, status, error, turn_id)
			VALUES ($1, $2, 'assistant', $3, $4, $5, $6, $7)
			RETURNING `+messageColumns,
			userID, conversationID, storable(m.Content), calls, m.Status, merr, turnID))
		if err != nil {
			return fmt.Errorf("store assistant message: %w", err)
		}
		return s.release(ctx, tx, userID, conversationID, turnID)
	})
	return out, err
}

// RenewTurn extends turnID's lease to lease from now; held is false when
// the conversation is no longer claimed by turnID.
func (s *Store) RenewTurn(ctx context.Context, userID string, conversationID int64, turnID string, lease time.Duration) (held bool, err error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE conversations SET active_until = now() + make_interval(secs => $4)
		WHERE user_id = $1 AND id = $2 AND active_turn = $3`, userID, conversationID, turnID, lease.Seconds())
	if err != nil {
		return false, fmt.Errorf("renew conversation lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseTurn ends turnID's lease without storing anything (the turn could
// not even start).
func (s *Store) ReleaseTurn(ctx context.Context, userID string, conversationID int64, turnID string) error {
	return s.release(ctx, s.db, userID, conversationID, turnID)
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Store) release(ctx context.Context, db execer, userID string, conversationID int64, turnID string) error {
	_, err := db.Exec(ctx, `
		UPDATE conversations SET active_turn = NULL, active_until = NULL, updated_at = now()
		WHERE user_id = $1 AND id = $2 AND active_turn = $3`, userID, conversationID, turnID)
	if err != nil {
		return fmt.Errorf("release conversation: %w", err)
	}
	return nil
}

// ActiveTurn reports the turn running in a conversation of userID ("" when
// none, or when its lease has expired).
func (s *Store) ActiveTurn(ctx context.Context, userID string, conversationID int64) (string, error) {
	var turn string
	err := s.db.QueryRow(ctx, `
		SELECT CASE WHEN active_until > now() THEN coalesce(active_turn, '') ELSE '' END
		FROM conversations WHERE user_id = $1 AND id = $2`, userID, conversationID).Scan(&turn)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", conversationNotFound(conversationID)
	}
	if err != nil {
		return "", fmt.Errorf("read conversation: %w", err)
	}
	return turn, nil
}

// Conversation returns one conversation of userID.
func (s *Store) Conversation(ctx context.Context, userID string, id int64) (Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE user_id = $1 AND id = $2`, userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Conversation{}, conversationNotFound(id)
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("read conversation: %w", err)
	}
	return c, nil
}

// Conversations returns userID's conversations, most recently active
// first, at most limit of them.
func (s *Store) Conversations(ctx context.Context, userID string, limit int) ([]Conversation, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+conversationColumns+` FROM conversations WHERE user_id = $1
		ORDER BY updated_at DESC, id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) { return scanConversation(r) })
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return list, nil
}

// Messages returns up to limit messages of a conversation of userID,
// oldest first; with before > 0 only messages with a smaller id (the page
// before). A conversation of another user is not found.
func (s *Store) Messages(ctx context.Context, userID string, conversationID, before int64, limit int) ([]Message, error) {
	if _, err := s.Conversation(ctx, userID, conversationID); err != nil {
		return nil, err
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	return s.lastMessages(ctx, userID, conversationID, before, limit)
}

// History returns the last limit messages of a conversation, oldest
// first: the window a turn shows the model.
func (s *Store) History(ctx context.Context, userID string, conversationID int64, limit int) ([]Message, error) {
	return s.lastMessages(ctx, userID, conversationID, 1<<63-1, limit)
}

func (s *Store) lastMessages(ctx context.Context, userID string, conversationID, before int64, limit int) ([]Message, error) {
	rows, err := s.db.Query(ctx, `
		SELECT * FROM (
			SELECT `+messageColumns+` FROM messages
			WHERE user_id = $1 AND conversation_id = $2 AND id < $3
			ORDER BY id DESC LIMIT $4
		) last ORDER BY id`, userID, conversationID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return list, nil
}

// maxTitleRunes bounds conversation titles.
const maxTitleRunes = 60

// TitleOf makes a conversation title of its first message: one line, at
// most 60 characters, cut at a word.
func TitleOf(text string) string {
	t := strings.Join(strings.Fields(storable(text)), " ")
	if utf8.RuneCountInString(t) <= maxTitleRunes {
		return t
	}
	r := []rune(t)[:maxTitleRunes]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > maxTitleRunes/2 {
		cut = cut[:i]
	}
	return cut + "…"
}

// storable makes text fit a Postgres text value (valid UTF-8, no NUL): a
// model's output is not checked by anyone else.
func storable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}
