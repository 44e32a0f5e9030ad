-- Chat: conversations with the assistant and their messages. The server
-- keeps no conversation state between requests: any instance can continue
-- any conversation from these rows.

-- +goose Up
CREATE TABLE conversations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      text        NOT NULL CHECK (user_id <> '' AND octet_length(user_id) <= 256),
    title        text        NOT NULL DEFAULT '' CHECK (char_length(title) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- The turn (assistant reply) being written right now, if any, and until
    -- when its lease holds. One turn per conversation across all instances;
    -- a crashed instance's lease simply expires.
    active_turn  text,
    active_until timestamptz,
    CHECK ((active_turn IS NULL) = (active_until IS NULL)),
    -- Lets messages reference (id, user_id), so that a message can never
    -- sit in another user's conversation.
    UNIQUE (id, user_id)
);
-- Listing a user's conversations, most recently active first.
CREATE INDEX conversations_user_updated_idx ON conversations (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         text        NOT NULL,
    conversation_id bigint      NOT NULL,
    role            text        NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content         text        NOT NULL DEFAULT '',
    -- Assistant messages: every tool call of the turn, in order, each with
    -- its id, name, arguments and result: [{"id","name","arguments","result","is_error"}].
    tool_calls      jsonb       CHECK (tool_calls IS NULL OR jsonb_typeof(tool_calls) = 'array'),
    -- complete, or how the turn ended early: cancelled by the user (content
    -- is the partial answer) or error (see error).
    status          text        NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'cancelled', 'error')),
    -- {"code","message"} for status error: what the user was told.
    error           jsonb,
    -- The turn that wrote the message: a user message and the assistant's
    -- answer to it share one.
    turn_id         text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (conversation_id, user_id) REFERENCES conversations (id, user_id) ON DELETE CASCADE
);
-- History of a conversation in order (every query also has user_id = $1).
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);

-- +goose Down
DROP TABLE messages, conversations;
