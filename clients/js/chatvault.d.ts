// Types of chatvault.js. The shapes below are the service's (docs/API.md); a test checks them
// against the OpenAPI document (layers/common/chatvault/openapi.json) in both directions.

export type Role = "user" | "assistant" | "system" | "tool";

export interface Session {
  session_id: string;
  title: string | null;
  metadata: { [key: string]: string };
  status: "active" | "ended";
  created_at: string;
  updated_at: string;
  last_message_at: string | null;
  message_count: number;
  preview: string | null;
  expires_at: string;
  /** A temporary conversation: kept TemporaryRetentionHours after its last activity (`expires_at`
   *  says when it disappears), never listed, never claimed. */
  temporary: boolean;
  /** How long it is kept after its last activity, in hours; each message and upload is kept this long
   *  after it was written (docs/API.md, "Retention per conversation"). */
  retention_hours: number;
  /** A reply of the chat is being made now (it will appear in the history): e.g. after the page that
   *  asked for it was closed mid-reply. */
  replying: boolean;
}

/** POST /sessions' answer: in anonymous mode it carries the session token, once. */
export interface CreatedSession extends Session {
  session_token?: string | null;
}

export interface CreateSessionRequest {
  session_id?: string | null;
  title?: string | null;
  metadata?: { [key: string]: string };
  /** A temporary conversation (docs/API.md, "Temporary conversations"). */
  temporary?: boolean;
  /** Keep it less long than the deployment's RetentionHours (1 to it). */
  retention_hours?: number;
}

export interface UpdateSessionRequest {
  title?: string | null;
  metadata?: { [key: string]: string };
  status?: "ended";
  /** Applied at once: messages and uploads older than it are deleted. */
  retention_hours?: number;
}

export interface MessageMetadata {
  tools_used?: string[] | null;
  processing_time_ms?: number | null;
  token_count?: number | null;
  model?: string | null;
  has_error?: boolean | null;
  error_message?: string | null;
  attributes?: { [key: string]: string } | null;
}

export interface AppendMessageRequest {
  role: Role;
  content: string;
  message_id?: string | null;
  metadata?: MessageMetadata;
}

/** A share link (docs/API.md, "Share links"): its id is the capability. */
export interface Share {
  share_id: string;
  created_at: string;
  expires_at: string;
  message_count: number;
}

export interface SharePage {
  items: Share[];
  next_cursor: string | null;
}

export interface RevokedShare {
  share_id: string;
  revoked_at: string;
}

export interface SharedMessage {
  role: Role;
  content: string;
  created_at: string;
}

/** A page of a shared conversation: no session id, no metadata, no uploads. */
export interface SharedConversation {
  title: string | null;
  created_at: string;
  expires_at: string;
  message_count: number;
  items: SharedMessage[];
  next_cursor: string | null;
}

/** A person's rating of a reply (docs/API.md, "Feedback on replies"). */
export interface Feedback {
  rating: "up" | "down";
  comment: string | null;
  updated_at: string;
}

export interface FeedbackRequest {
  rating: "up" | "down";
  /** At most 1,000 characters: content, kept and erased with the message. */
  comment?: string | null;
}

export interface Message {
  message_id: string;
  session_id: string;
  role: Role;
  content: string;
  metadata: { [key: string]: unknown };
  created_at: string;
  /** A person's feedback on this reply, or null. */
  feedback: Feedback | null;
}

/** POST /sessions/{session_id}/chat's body. */
export interface ChatRequest {
  content: string;
  message_id?: string | null;
  metadata?: MessageMetadata;
}

/** POST /chat's body: without `session_id` a session is created first. */
export interface StartChatRequest extends ChatRequest {
  session_id?: string | null;
}

/** A chat's answer: the stored user message and the stored assistant reply. */
export interface ChatResult {
  message: Message;
  reply: Message;
}

/** POST /chat's answer: `session` (with its token, this once, in anonymous mode) when it created one. */
export interface StartedChat extends ChatResult {
  session?: CreatedSession;
}

/** POST /sessions/{session_id}/chat/stop's answer: whether a reply was being made (it stops). */
export interface StopReply {
  stopping: boolean;
}

export interface ChatOptions extends CallOptions {
  /** The user message's id; a UUIDv4 is chosen when none is given. Retry a failure with the same one. */
  messageId?: string;
  metadata?: MessageMetadata;
  /** This call's retries (default the client's `retries`); 0 leaves every retry to the caller. */
  retries?: number;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
export type MessagePage = Page<Message>;
export type SessionPage = Page<Session>;

export interface CreateUploadRequest {
  filename: string;
  content_type: string;
  size: number;
}

/** A presigned S3 POST: post `fields`, then the file as `file`, to `url`. */
export interface UploadForm {
  upload_id: string;
  key: string;
  url: string;
  fields: { [key: string]: string };
  expires_at: string;
  max_bytes: number;
}

export interface DeleteReceipt {
  session_id: string;
  deleted_at: string;
  erased: { messages: number; uploads: number };
}

/** An uploaded file as the uploads' read side lists it (file names are never stored). */
export interface Upload {
  upload_id: string;
  content_type: string;
  size: number;
  status: "pending" | "stored";
  created_at: string;
  expires_at: string;
}
export type UploadPage = Page<Upload>;
/** GET /uploads/{upload_id}: a presigned GET, valid minutes, once stored. */
export interface UploadDownload extends Upload {
  download_url: string;
}
export interface ExportedUpload extends Upload {
  download_url?: string | null;
}
export interface SessionExport {
  format: "chatvault.export/1";
  exported_at: string;
  session: Session;
  messages: Message[];
  uploads: ExportedUpload[];
}
/** How an export object is sealed (`chatvault.export.sealed/1`, docs/API.md), and its own key:
 *  in the link's answer only, never stored by the service. */
export interface ExportEncryption {
  algorithm: "AES-256-GCM";
  /** 256 bits, base64url without padding. */
  key: string;
  /** Plaintext bytes of every chunk but the last (1,048,576). */
  chunk_bytes: number;
  format: "chatvault.export.sealed/1";
}
/** An export too large for one answer: a link to its sealed object (it expires; the panic button
 *  erases it), and the key that opens it (`openExport`). */
export interface ExportLink {
  download_url: string;
  expires_at: string;
  encryption: ExportEncryption;
}
/** DELETE /sessions (jwt and both modes): every session of the caller erased. */
export interface EraseAllReceipt {
  deleted_at: string;
  erased: { sessions: number; messages: number; uploads: number };
}

export interface ErrorDetail {
  field: string;
  problem: string;
}

export interface ErrorBody {
  code: string;
  message: string;
  request_id: string;
  details?: ErrorDetail[] | null;
}

export interface ErrorResponse {
  error: ErrorBody;
}

/** What a storage must offer (localStorage and sessionStorage do). */
export interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface StoredSession {
  session_id: string;
  session_token: string | null;
}

export interface ClientOptions {
  /** The API's base URL; default "/api/v1" (same origin). */
  baseUrl?: string;
  /** Where the streamed chat (chatStream, startChatStream) goes: on AWS the stack's StreamApiUrl
   *  (`/api/v1` is added unless it ends with it); default `baseUrl` (`make dev` streams on its port). */
  streamUrl?: string;
  /** Where the session id and token are kept; default localStorage; null keeps nothing. */
  storage?: SessionStorageLike | null;
  /** Default "chatvault.session". */
  storageKey?: string;
  /** A signed-in user's JWT (jwt mode), sent as `Authorization: Bearer`. */
  getJwt?: (() => string | null | Promise<string | null>) | null;
  /** Retries of a 429/503 (after Retry-After) or of a lost connection (idempotent calls only); default 3. */
  retries?: number;
  /** A Retry-After longer than this is not waited for: the error is thrown; default 30. */
  maxRetryDelaySeconds?: number;
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
}
export interface SessionCallOptions extends CallOptions {
  /** Another session than the stored one. */
  sessionId?: string;
}

export interface UploadProgress {
  loaded: number;
  total: number;
  fraction: number;
}

export interface UploadOptions extends SessionCallOptions {
  filename?: string;
  contentType?: string;
  onProgress?: (progress: UploadProgress) => void;
}

export interface UploadResult {
  upload: UploadForm;
  status: "stored";
}

export interface StartResult {
  session: Session;
  /** The stored session was found and is in use. */
  restored: boolean;
  /** A stored session was gone (deleted, expired, tampered): a new one was started. */
  reset: boolean;
}

/** The service answered with an error: `code` is its `error.code`. A 404's tells what is missing:
 *  "session_not_found" (no such session, or not the caller's), "upload_not_found", or "not_found", no
 *  such route (e.g. the chat routes of a deployment without its own model: its bot answers instead). */
export class ChatvaultError extends Error {
  constructor(status: number, body: ErrorResponse | null, retryAfter?: number | null);
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;
  readonly details: ErrorDetail[];
  /** Seconds from Retry-After, when the answer had one. */
  readonly retryAfter: number | null;
  /** A chat failure after its session was created (startChat): that session, with its token. */
  readonly session: CreatedSession | null;
  /** A chat failure: the message_id it sent; a chat with it completes the pair. */
  readonly messageId: string | null;
}

/** No answer at all: the request may or may not have arrived. */
export class NetworkError extends Error {
  constructor(cause?: unknown);
  readonly code: "network_error";
  readonly cause: unknown;
  /** As ChatvaultError's: set on a chat's failure. */
  readonly session: CreatedSession | null;
  readonly messageId: string | null;
}

/** A streamed chat: iterate over it (`for await`) for the reply's text as the model writes it, each
 *  item a delta; when the iteration ends, `message` and `reply` are the stored pair (and `session`, for
 *  startChatStream, the new session). An `error` event is thrown as the ChatvaultError the JSON form
 *  throws (its status, code, retryAfter), an answer cut off as a NetworkError; each carries `messageId`
 *  (and `session`). Where the answer is the JSON form (no streaming there), there are no deltas, only
 *  the pair; a replay (the same messageId, its pair stored) has none either. Aborting the signal or
 *  `close()` stops reading, not the reply: `ChatvaultClient.stop()` does. */
export class ChatStream<T extends ChatResult = ChatResult> implements AsyncIterable<string> {
  /** Made by ChatvaultClient.chatStream and startChatStream. */
  private constructor();
  [Symbol.asyncIterator](): AsyncIterator<string, void, undefined>;
  /** The stored pair, once the rest is read (deltas not iterated over are dropped). */
  result(): Promise<T>;
  /** Stop reading (the reply is still made and stored). */
  close(): Promise<void>;
  /** The user message's id: a chat with it completes the pair. */
  readonly messageId: string;
  /** startChatStream's new session (with its token, this once), as soon as it has come. */
  readonly session: CreatedSession | null;
  /** The stored user message, as soon as it has come. */
  readonly message: Message | null;
  /** The stored reply, once the iteration has ended (`metadata.attributes.stop_reason` "stopped":
   *  stopped by ChatvaultClient.stop, the text so far). */
  readonly reply: Message | null;
  /** Whether the answer was an event stream (false: the JSON form); null until it has come. */
  readonly streamed: boolean | null;
  /** The deltas so far, joined (keep `reply.content`, the stored text). */
  readonly text: string;
}

export function memoryStorage(): SessionStorageLike;
export function parseRetryAfter(value: string | null | undefined, now?: number): number | null;

export class ChatvaultClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  /** Where the streamed chat goes (ending with /api/v1). */
  readonly streamUrl: string;
  readonly stored: StoredSession | null;
  readonly hasStored: boolean;
  readonly sessionId: string | null;
  remember(sessionId: string, sessionToken?: string | null): void;
  /** Forget the session on this device (the server keeps it until it expires or is erased). */
  forget(): void;
  /** The storage key of the erases still to finish: `${storageKey}.erase`. */
  readonly pendingEraseKey: string;
  /** The erases a quick exit left to finish: each session's id and token, nothing of the conversation. */
  readonly pendingErases: StoredSession[];
  /** One call of the API (base URL, headers, retries, typed errors): what the methods below use.
   *  `token` overrides the stored session token (null: none); `retries` the client's number of
   *  retries; `retryOn` which answers are retried (default 429 and 503). */
  request<T = unknown>(
    method: string,
    path: string,
    options?: {
      body?: unknown;
      query?: Record<string, string | number | null | undefined>;
      idempotent?: boolean;
      signal?: AbortSignal;
      keepalive?: boolean;
      token?: string | null;
      retries?: number;
      retryOn?: (status: number, data: unknown) => boolean;
    },
  ): Promise<{ status: number; data: T; text: string }>;

  createSession(request?: CreateSessionRequest, options?: CallOptions): Promise<CreatedSession>;
  restoreSession(options?: CallOptions): Promise<Session | null>;
  /** Finishes a pending erase first (`finishPendingErases`): if that fails, its error is thrown and
   *  nothing is restored or started. */
  startSession(request?: CreateSessionRequest, options?: CallOptions): Promise<StartResult>;
  getSession(sessionId?: string, options?: CallOptions): Promise<Session>;
  updateSession(patch: UpdateSessionRequest, options?: SessionCallOptions): Promise<Session>;
  /** Rate a reply (an assistant message), replacing its previous feedback; the message as it stands. */
  setFeedback(messageId: string, feedback: FeedbackRequest, options?: SessionCallOptions): Promise<Message>;
  /** Remove a reply's feedback. */
  clearFeedback(messageId: string, options?: SessionCallOptions): Promise<Message>;
  /** A read-only snapshot of the conversation as it is now, behind an unguessable link. */
  createShare(options?: SessionCallOptions): Promise<Share>;
  listShares(options?: SessionCallOptions & { limit?: number; cursor?: string | null }): Promise<SharePage>;
  /** Revoke a link: from then on it is 404. */
  revokeShare(shareId: string, options?: SessionCallOptions): Promise<RevokedShare>;
  /** A page of a shared conversation, read without credentials. */
  getShared(shareId: string, options?: CallOptions & { limit?: number; cursor?: string | null }): Promise<SharedConversation>;
  /** The panic button. Forgets the session locally once the service confirms the erase: on 200, or
   *  on 404 (already gone; the ChatvaultError is still thrown). Any other failure (NetworkError, 429,
   *  503, 5xx) means not erased: the session is kept for a retry and the error is thrown. */
  eraseSession(options?: SessionCallOptions & { keepalive?: boolean }): Promise<DeleteReceipt>;
  /** The quick exit's erase, without waiting: records the session in `pendingErases`, forgets it and
   *  sends the DELETE with keepalive. True once confirmed (then the record is gone); never rejects. */
  eraseSessionOnExit(): Promise<boolean>;
  /** Erases what `pendingErases` holds (200 or 404 confirm one); throws the first failure, keeping
   *  its record. Resolves to the number finished. */
  finishPendingErases(options?: CallOptions): Promise<number>;
  /** POST /sessions/{id}/claim (AuthMode=both, on its way): loosely typed until the document has it. */
  claim(jwt: string, options?: SessionCallOptions): Promise<Session>;

  appendMessage(message: AppendMessageRequest, options?: SessionCallOptions): Promise<Message>;
  listMessages(
    options?: SessionCallOptions & { order?: "asc" | "desc"; limit?: number; cursor?: string },
  ): Promise<MessagePage>;
  messages(options?: SessionCallOptions & { order?: "asc" | "desc"; limit?: number }): AsyncGenerator<Message, void>;
  /** The messages stored after those already shown (`known`: their message_ids), oldest first, for a
   *  page that polls its history: newest-first pages (`limit`, default 20) followed by their cursors
   *  until one holds a known message, or the history ends (none known: every message). */
  messagesAfter(
    known: Iterable<string>,
    options?: SessionCallOptions & { limit?: number; retries?: number },
  ): Promise<Message[]>;

  /** POST /sessions/{id}/chat (`sessionId` null: the stored session): the user message and the model's
   *  reply, both stored. Always sends a message_id and retries with it a lost connection, 429, 502,
   *  503, 504 and 409 reply_in_progress (after Retry-After); never another 4xx. A thrown failure
   *  carries `messageId`: a chat with it completes the pair. */
  chat(sessionId: string | null | undefined, content: string, options?: ChatOptions): Promise<ChatResult>;
  /** POST /chat: a new session (remembered, with its token) and its first exchange. A failure after the
   *  session was created is retried on the session's route with the same message_id; thrown, it
   *  carries `session` (remembered too) and `messageId`. */
  startChat(content: string, options?: ChatOptions): Promise<ChatResult & { session: CreatedSession }>;
  /** chat(), streamed (`streamUrl`): the reply's text as the model writes it, then the stored pair.
   *  Its request is retried as chat()'s until the answer has begun; then nothing is. */
  chatStream(sessionId: string | null | undefined, content: string, options?: ChatOptions): ChatStream<ChatResult>;
  /** startChat(), streamed: the new session is remembered (with its token) as soon as it comes; a
   *  failure after it was created carries it (`error.session`) and the messageId. */
  startChatStream(content: string, options?: ChatOptions): ChatStream<ChatResult & { session: CreatedSession }>;
  /** POST /sessions/{id}/chat/stop (`sessionId` null: the stored session): true when a reply was being
   *  made; a streamed one ends within about a second, stored as far as it got (stop_reason
   *  "stopped"), or with ChatvaultError reply_stopped when nothing was written yet. */
  stop(sessionId?: string | null, options?: CallOptions): Promise<boolean>;

  listUploads(options?: SessionCallOptions & { limit?: number; cursor?: string }): Promise<UploadPage>;
  getUpload(uploadId: string, options?: SessionCallOptions): Promise<UploadDownload>;
  /** JSON (or `format: "markdown"`: the transcript as text). One too large for an answer comes as an
   *  ExportLink, which is followed and opened (openExport): the result is the export either way. */
  exportSession(options?: SessionCallOptions & { format?: "json" }): Promise<SessionExport>;
  exportSession(options: SessionCallOptions & { format: "markdown" }): Promise<string>;
  /** Download a link's sealed export object and open it with the link's key (WebCrypto AES-GCM, chunk
   *  by chunk). JSON or text as `format` says, else as the object's name ends (`.json`, `.md`). Throws
   *  ChatvaultError `export_broken` for an object that does not open under the key, `export_<S3 code>`
   *  for a link that no longer serves (expired, erased; NetworkError where the browser hides the
   *  bucket's refusal). */
  openExport(link: ExportLink, options: CallOptions & { format: "json" }): Promise<SessionExport>;
  openExport(link: ExportLink, options: CallOptions & { format: "markdown" }): Promise<string>;
  openExport(link: ExportLink, options?: CallOptions): Promise<SessionExport | string>;
  /** DELETE /sessions: every session of the signed-in caller (jwt and both modes). */
  eraseAllSessions(options?: CallOptions): Promise<EraseAllReceipt>;
  listSessions(options?: CallOptions & { limit?: number; cursor?: string }): Promise<SessionPage>;

  createUpload(request: CreateUploadRequest, options?: SessionCallOptions): Promise<UploadForm>;
  uploadFile(file: Blob & { name?: string }, options?: UploadOptions): Promise<UploadResult>;

  openapi(options?: CallOptions): Promise<Record<string, unknown>>;
}

export default ChatvaultClient;
