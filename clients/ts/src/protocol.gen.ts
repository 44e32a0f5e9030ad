// Hand-written stand-in for the types generated from docs/schemas by
// scripts/gen-types.mjs (branch i10-schemas). Replaced by the generated file.

export type Priority = "low" | "medium" | "high";

export interface Task {
  id: number;
  user_id: string;
  title: string;
  description: string;
  completed: boolean;
  priority: Priority;
  tags: string[];
  due_date: string | null;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface TaskFields {
  title: string;
  description?: string;
  completed?: boolean;
  priority?: Priority;
  tags?: string[];
  due_date?: string | null;
}

export interface TaskPatch {
  title?: string;
  description?: string;
  completed?: boolean;
  priority?: Priority;
  tags?: string[];
  due_date?: string | null;
}

export interface TaskFilter {
  status?: "all" | "pending" | "completed";
  priority?: string | string[];
  tag?: string | string[];
  q?: string;
  due_before?: string;
  due_after?: string;
  sort?: "created" | "updated" | "title" | "due_date" | "priority";
  order?: "asc" | "desc";
  limit?: number;
  cursor?: string;
}

export interface PresenceSession {
  session_id: string;
  device: string;
  instance: string;
  connected_at: string;
}

export type ErrorCode =
  | "bad_request" | "invalid" | "not_found" | "version_mismatch" | "conflict" | "unauthorized"
  | "forbidden" | "rate_limited" | "unavailable" | "too_large" | "internal";

export interface ToolCall {
  id: string;
  name: string;
  arguments: unknown;
  result?: unknown;
  is_error?: boolean;
}

export interface Limits {
  max_frame_bytes: number;
  frames_per_second: number;
  frame_burst: number;
  max_sockets_per_user: number;
  send_queue_bytes: number;
  ping_interval_ms: number;
  max_in_flight: number;
}

type RequestId = string | number;

export interface HelloFrame {
  type: "hello"; protocol: number; session_id: string; user_id: string; instance: string;
  server_time: string; seq: number; token_expires_at?: string | null; limits: Limits;
}
export interface TaskCreatedFrame { type: "task.created"; seq: number; task: Task }
export interface TaskUpdatedFrame { type: "task.updated"; seq: number; task: Task }
export interface TaskDeletedFrame { type: "task.deleted"; seq: number; task_id: number }
export interface ReplyFrame {
  type: "reply"; id?: RequestId; re: string; op?: string; task?: Task; task_id?: number; replayed?: boolean;
  tasks?: Task[]; next_cursor?: string; expires_at?: string | null; online?: number; sessions?: PresenceSession[];
  conversation_id?: number; turn_id?: string; message_id?: number; created?: boolean; title?: string; status?: string;
}
export interface ErrorFrame {
  type: "error"; id?: RequestId; re?: string; code: ErrorCode; message: string;
  fields?: Record<string, string>; task?: Task; retry_after_ms?: number;
}
export interface PongFrame { type: "pong"; id?: RequestId; server_time: string }
export interface SyncedFrame { type: "synced"; id?: RequestId; seq: number }
export interface SnapshotFrame {
  type: "snapshot"; id?: RequestId; seq: number; page: number; reason?: string; tasks: Task[]; more: boolean;
}
export interface PresenceFrame {
  type: "presence"; event: "join" | "leave" | "sync"; session_id?: string; online: number; sessions: PresenceSession[];
}
export interface ChatStartedFrame {
  type: "chat.started"; conversation_id: number; turn_id: string; message_id: number; message: string;
  created: boolean; title: string; request_id?: string | number; session_id?: string; model?: string;
}
export interface ChatDeltaFrame { type: "chat.delta"; conversation_id: number; turn_id: string; text: string }
export interface ChatToolCallFrame {
  type: "chat.tool_call"; conversation_id: number; turn_id: string; call_id: string; name: string; arguments: unknown;
}
export interface ChatToolResultFrame {
  type: "chat.tool_result"; conversation_id: number; turn_id: string; call_id: string; name: string;
  result: unknown; is_error: boolean;
}
export interface ChatDoneFrame {
  type: "chat.done"; conversation_id: number; turn_id: string; message_id: number;
  status: "complete" | "cancelled"; text: string; tool_calls: ToolCall[];
}
export interface ChatErrorFrame {
  type: "chat.error"; conversation_id: number; turn_id: string; message_id: number; code: string;
  message: string; text: string; tool_calls: ToolCall[];
}
export type ServerFrame =
  | HelloFrame | TaskCreatedFrame | TaskUpdatedFrame | TaskDeletedFrame | ReplyFrame | ErrorFrame | PongFrame
  | SyncedFrame | SnapshotFrame | PresenceFrame | ChatStartedFrame | ChatDeltaFrame | ChatToolCallFrame
  | ChatToolResultFrame | ChatDoneFrame | ChatErrorFrame;

export interface PingFrame { type: "ping"; id?: RequestId }
export interface TaskCreateFrame { type: "task.create"; id?: RequestId; mutation_id?: string; task: TaskFields }
export interface TaskUpdateFrame {
  type: "task.update"; id?: RequestId; mutation_id?: string; task_id: number; base_version?: number; task: TaskPatch;
}
export interface TaskCompleteFrame {
  type: "task.complete"; id?: RequestId; mutation_id?: string; task_id: number; base_version?: number; completed?: boolean;
}
export interface TaskDeleteFrame {
  type: "task.delete"; id?: RequestId; mutation_id?: string; task_id: number; base_version?: number;
}
export interface TaskListFrame { type: "task.list"; id?: RequestId; filter?: TaskFilter }
export interface SyncFrame { type: "sync"; id?: RequestId; since: number }
export interface AuthRefreshFrame { type: "auth.refresh"; id?: RequestId; token: string }
export interface PresenceListFrame { type: "presence.list"; id?: RequestId }
export interface ChatSendFrame { type: "chat.send"; id?: RequestId; conversation_id?: number; message: string }
export interface ChatCancelFrame { type: "chat.cancel"; id?: RequestId; conversation_id: number }
export type ClientFrame =
  | PingFrame | TaskCreateFrame | TaskUpdateFrame | TaskCompleteFrame | TaskDeleteFrame | TaskListFrame | SyncFrame
  | AuthRefreshFrame | PresenceListFrame | ChatSendFrame | ChatCancelFrame;
