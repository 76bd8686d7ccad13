// chatvault.js: a dependency-free browser client for the chatvault Sessions API (docs/API.md).
// One ES module, no build step: `import { ChatvaultClient } from "./chatvault.js"`.
// Types: chatvault.d.ts (checked against the service's OpenAPI document by the test suite).

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An answer of the service that is not a success: `code` is the service's `error.code`. */
export class ChatvaultError extends Error {
  constructor(status, body, retryAfter = null) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.name = "ChatvaultError";
    this.status = status;
    this.code = error.code || (status === 401 ? "unauthorized" : `http_${status}`);
    this.requestId = error.request_id || null;
    this.details = error.details || [];
    this.retryAfter = retryAfter;
    // A chat that created its session and then failed answers with that session beside the error
    // (its token is sent this once): startChat adopts it.
    this.session = (body && body.session) || null;
    this.messageId = null; // a chat's failure: the message_id it sent, to retry with
  }
}

/** No answer at all (offline, connection reset, blocked by CORS): the request may or may not have arrived. */
export class NetworkError extends Error {
  constructor(cause) {
    super(cause && cause.message ? cause.message : "network error");
    this.name = "NetworkError";
    this.code = "network_error";
    this.cause = cause;
    this.session = null;
    this.messageId = null;
  }
}

/** A storage that keeps nothing beyond the page (for apps that must not write to the device). */
export function memoryStorage() {
  const map = new Map();
  return {
    getItem: (key) => (map.has(key) ? map.get(key) : null),
    setItem: (key, value) => void map.set(key, String(value)),
    removeItem: (key) => void map.delete(key),
  };
}

/** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

function uuid4() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === "function") return globalThis.crypto.randomUUID();
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The answers every call retries (after Retry-After): a rate limit, or the service briefly unavailable. */
const retryable = (status) => status === 429 || status === 503;

/** The answers a chat retries with its message_id, which makes a retry safe: those above, the model's
 *  failures (502 model_unavailable, 504 model_timeout; the user message stays stored and the retry
 *  completes the pair), and 409 reply_in_progress (another reply of the session, maybe this very
 *  chat's after a lost answer, is still being made). Never another 4xx. An answer that carries a
 *  session the chat created is not retried on its route: that would create a second session. */
function chatRetryable(status, data) {
  if (data && data.session) return false;
  if (status === 409) return Boolean(data && data.error && data.error.code === "reply_in_progress");
  return retryable(status) || status === 502 || status === 504;
}

/** A chat's request body: a message_id always (chosen here when none is given), so that a retry is the
 *  same message and never stores it, or its reply, twice. */
function chatBody(content, messageId, metadata) {
  return { content, message_id: messageId ?? uuid4(), ...(metadata === undefined ? {} : { metadata }) };
}

/** A chat's failure carries the message_id it sent (and, when known, the session it was in). */
function chatFailure(error, messageId, session = null) {
  if (error instanceof ChatvaultError || error instanceof NetworkError) {
    error.messageId = messageId;
    if (session && !error.session) error.session = session;
  }
  return error;
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

// ---- the sealed export object ----

const SEALED_EXPORT = "chatvault.export.sealed/1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** base64url (no padding) to bytes. */
function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Bytes as they arrive, taken out again in pieces of a chosen size (each byte copied once). */
class ByteQueue {
  constructor() {
    this.pieces = [];
    this.length = 0;
  }

  push(bytes) {
    if (bytes.length) {
      this.pieces.push(bytes);
      this.length += bytes.length;
    }
  }

  take(count) {
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      const piece = this.pieces[0];
      const used = Math.min(piece.length, count - filled);
      out.set(piece.subarray(0, used), filled);
      filled += used;
      if (used === piece.length) this.pieces.shift();
      else this.pieces[0] = piece.subarray(used);
    }
    this.length -= count;
    return out;
  }
}

/** The export object's answer read whole: its text, opened chunk by chunk as it arrives when the
 *  link carries `encryption` (docs/API.md, "The sealed export object": every chunk `nonce | ciphertext
 *  | tag` of `chunk_bytes` plaintext but the last, its associated data `chatvault.export/1|<index>|<1
 *  if last else 0>`), as it is otherwise (a deployment from before sealed exports). */
async function exportText(response, encryption) {
  if (!encryption) return response.text();
  if (encryption.algorithm !== "AES-256-GCM" || encryption.format !== SEALED_EXPORT) {
    throw new ChatvaultError(response.status, {
      error: { code: "export_format_unknown", message: `An export sealed as ${encryption.format} cannot be opened here.` },
    });
  }
  const broken = () =>
    new ChatvaultError(response.status, {
      error: { code: "export_broken", message: "The export does not open under its key: changed, cut off, or not this link's." },
    });
  const key = await crypto.subtle.importKey("raw", fromBase64Url(encryption.key), "AES-GCM", false, ["decrypt"]);
  const sealedSize = encryption.chunk_bytes + NONCE_BYTES + TAG_BYTES;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const encoder = new TextEncoder();
  const parts = [];
  let index = 0;
  const open = async (chunk, last) => {
    if (chunk.length < NONCE_BYTES + TAG_BYTES) throw broken();
    let plain;
    try {
      plain = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: chunk.subarray(0, NONCE_BYTES),
          additionalData: encoder.encode(`chatvault.export/1|${index}|${last ? 1 : 0}`),
          tagLength: 128,
        },
        key,
        chunk.subarray(NONCE_BYTES),
      );
      parts.push(decoder.decode(plain, { stream: !last }));
    } catch {
      throw broken();
    }
    index += 1;
  };
  const queue = new ByteQueue();
  if (response.body && typeof response.body.getReader === "function") {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      queue.push(value);
      // a full chunk is opened once more follows it: the last one is known only at the end
      while (queue.length > sealedSize) await open(queue.take(sealedSize), false);
    }
  } else {
    queue.push(new Uint8Array(await response.arrayBuffer()));
    while (queue.length > sealedSize) await open(queue.take(sealedSize), false);
  }
  await open(queue.take(queue.length), true);
  return parts.join("");
}

// ---- the streamed chat ----

const EVENT_STREAM = "text/event-stream";

/** Whether this browser can read a response as it arrives (fetch's body as a ReadableStream). */
const canStream = () => typeof globalThis.ReadableStream === "function";

/** The `text/event-stream` format, read as it arrives: `push(text)` returns the events it completed,
 *  each `{name, data}` (`name` "message" when none is given; the `data:` lines joined with newlines).
 *  A line ends at CRLF, LF or CR (a CR at the end of what has arrived waits: its LF may follow); a
 *  blank line dispatches an event (one without data is not dispatched); comments (`:`), `id:`,
 *  `retry:` and unknown fields are ignored; one space after the colon is not part of the value. */
class EventParser {
  constructor() {
    this.buffer = "";
    this.name = "";
    this.data = [];
  }

  push(text, end = false) {
    this.buffer += text;
    const events = [];
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    for (let found = eol.exec(this.buffer); found; found = eol.exec(this.buffer)) {
      if (!end && found[0] === "\r" && eol.lastIndex === this.buffer.length) break;
      this.line(this.buffer.slice(start, found.index), events);
      start = eol.lastIndex;
    }
    this.buffer = this.buffer.slice(start); // an event the stream ends inside is never dispatched
    return events;
  }

  line(line, events) {
    if (line === "") {
      if (this.data.length) events.push({ name: this.name || "message", data: this.data.join("\n") });
      this.name = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.name = value;
    else if (field === "data") this.data.push(value);
  }
}

/** The events of an event-stream response, each as soon as it has arrived (response.body's reader; a
 *  fetch whose response has none: the whole text, once it is complete). */
async function* eventsOf(response) {
  const parser = new EventParser();
  const body = response.body;
  if (!body || typeof body.getReader !== "function") {
    yield* parser.push(await response.text(), true);
    return;
  }
  const reader = body.getReader();
  const decoder = new TextDecoder(); // UTF-8; a character split between chunks waits for its end
  let done = false;
  try {
    while (!done) {
      const chunk = await reader.read();
      done = chunk.done;
      yield* parser.push(done ? decoder.decode() : decoder.decode(chunk.value, { stream: true }), done);
    }
  } finally {
    if (!done) reader.cancel().catch(() => {}); // left early (a reply, a close): stop reading
  }
}

/**
 * A chat being answered, streamed (ChatvaultClient.chatStream, startChatStream). Iterate over it
 * (`for await (const text of stream)`) for the reply's text as the model writes it, each item a delta;
 * when the iteration ends, `message` and `reply` are the stored user message and the stored reply
 * (exactly as GET .../messages returns it), and for startChatStream `session` is the new session (the
 * client has remembered it and its token, as startChat does). `result()` reads what is left and
 * returns the pair.
 *
 * The request is sent at once. `streamed` says whether the answer was an event stream (null until it
 * has come): where it is not (a proxy or a deployment that ignores Accept, or a browser that cannot
 * read a response as it arrives: then the JSON form is asked for), there are no deltas, only the
 * pair. A replay of a chat whose pair is stored (the same messageId) has no deltas either.
 *
 * Errors: a failure before anything is stored is thrown by the first step of the iteration, after
 * the retries chat() would make; once the answer has begun nothing is retried. An `error` event is
 * thrown as the ChatvaultError the JSON form throws (its `status`, `code`, `retryAfter`); an answer
 * cut off is a NetworkError. Each carries `messageId` (and `session`, for startChatStream): the user
 * message stays stored, and a chat with that messageId completes the pair (the stored reply, or a new
 * one). Aborting the `signal` (or `close()`) stops reading only: the service still makes and stores
 * the reply. `ChatvaultClient.stop()` stops it.
 */
export class ChatStream {
  constructor(client, open, messageId, { signal, start = false } = {}) {
    this.messageId = messageId;
    this.session = null;
    this.message = null;
    this.reply = null;
    this.streamed = null;
    this.text = ""; // the deltas so far, joined (keep `reply.content`: the stored text)
    this.client = client;
    this.start = start;
    this.error = null;
    this.closed = false;
    this.signal = signal;
    this.controller = new AbortController(); // close(), or the caller's signal, stops reading
    if (signal) {
      if (signal.aborted) this.controller.abort(signal.reason);
      else signal.addEventListener("abort", () => this.controller.abort(signal.reason), { once: true });
    }
    this.opened = open(this.controller.signal);
    this.opened.catch(() => {}); // thrown where it is read: by the iteration
    this.run = this.deltas();
  }

  [Symbol.asyncIterator]() {
    return this.run;
  }

  /** The stored pair (`{message, reply}`, and `session` for startChatStream), once the rest of the
   *  answer is read (deltas not iterated over are dropped). Throws what the iteration threw. */
  async result() {
    for await (const _ of this.run) {
      /* the rest of the deltas */
    }
    if (this.error) throw this.error;
    if (!this.reply) throw this.failed(new NetworkError(new Error("The stream was closed before its reply came.")));
    const pair = { message: this.message, reply: this.reply };
    return this.start ? { session: this.session, ...pair } : pair;
  }

  /** Stop reading (the service still makes and stores the reply: ChatvaultClient.stop stops it). */
  async close() {
    this.closed = true;
    this.controller.abort();
    await this.run.return(undefined);
  }

  async *deltas() {
    try {
      const { response } = await this.opened;
      this.streamed = (response.headers.get("Content-Type") || "").toLowerCase().includes(EVENT_STREAM);
      if (!this.streamed) {
        const pair = JSON.parse(await response.text()); // the JSON form: the pair, no deltas
        this.take("message", pair.message);
        if (pair.session) this.take("session", pair.session);
        this.take("reply", pair.reply);
        return;
      }
      for await (const event of eventsOf(response)) {
        const data = JSON.parse(event.data);
        if (event.name === "delta") {
          if (!data || typeof data.text !== "string") throw new SyntaxError("a delta without its text");
          this.text += data.text;
          yield data.text;
        } else if (event.name === "error") {
          // the status and Retry-After the JSON form would have answered ride beside the error body
          const status = Number.isInteger(data && data.status) ? data.status : 500;
          throw new ChatvaultError(status, data, data && data.retry_after != null ? Number(data.retry_after) : null);
        } else {
          this.take(event.name, data); // session, message, reply; an event a newer service sends: ignored
          if (event.name === "reply") return;
        }
      }
      throw new NetworkError(new Error("The answer ended before its reply came."));
    } catch (error) {
      if (this.closed) return;
      throw this.failed(error);
    }
  }

  take(name, data) {
    if (name === "session") {
      this.session = data;
      this.client.remember(data.session_id, data.session_token); // its token comes this once
    } else if (name === "message") this.message = data;
    else if (name === "reply") this.reply = data;
  }

  failed(error) {
    if (this.signal && this.signal.aborted) return (this.error = error); // the caller's own abort, as fetch throws it
    let failure = error;
    if (error instanceof TypeError || error instanceof SyntaxError || (error && error.name === "AbortError")) {
      failure = new NetworkError(error); // cut off, or not readable (the cause may quote the conversation)
    }
    this.error = chatFailure(failure, this.messageId, this.session);
    return this.error;
  }
}

export class ChatvaultClient {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the API's base, default "/api/v1" (same origin)
   * @param {string} [options.streamUrl] where the streamed chat goes (chatStream, startChatStream): on
   *   AWS the stack's StreamApiUrl (`/api/v1` is added unless it ends with it); default baseUrl
   * @param {Storage|null} [options.storage] where session_id and session_token live; default localStorage
   * @param {string} [options.storageKey] default "chatvault.session"
   * @param {() => (string|null|Promise<string|null>)} [options.getJwt] a signed-in user's JWT (jwt mode)
   * @param {number} [options.retries] retries of a 429/503 or a lost connection, default 3
   * @param {number} [options.maxRetryDelaySeconds] longest wait honoured, default 30
   * @param {typeof fetch} [options.fetch]
   */
  constructor(options = {}) {
    this.baseUrl = (options.baseUrl ?? "/api/v1").replace(/\/$/, "");
    const streamUrl = options.streamUrl ? options.streamUrl.replace(/\/$/, "") : null;
    this.streamUrl = !streamUrl ? this.baseUrl : streamUrl.endsWith("/api/v1") ? streamUrl : `${streamUrl}/api/v1`;
    this.storage = options.storage === undefined ? globalThis.localStorage : options.storage;
    this.storageKey = options.storageKey ?? "chatvault.session";
    this.getJwt = options.getJwt ?? null;
    this.retries = options.retries ?? 3;
    this.maxRetryDelaySeconds = options.maxRetryDelaySeconds ?? 30;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  // ---- the session kept in storage ----

  /** The stored `{session_id, session_token}`, or null (nothing stored, or unreadable). */
  get stored() {
    let raw = null;
    try {
      raw = this.storage ? this.storage.getItem(this.storageKey) : null;
    } catch {
      return null;
    }
    if (!raw) return null;
    try {
      const value = JSON.parse(raw);
      if (value && typeof value.session_id === "string") {
        return { session_id: value.session_id, session_token: value.session_token ?? null };
      }
    } catch {
      /* unreadable: treated as stored-but-gone by restore() */
    }
    return { session_id: "", session_token: null };
  }

  /** True when storage holds something under the key (even something unreadable). */
  get hasStored() {
    try {
      return Boolean(this.storage && this.storage.getItem(this.storageKey));
    } catch {
      return false;
    }
  }

  get sessionId() {
    const s = this.stored;
    return s && s.session_id ? s.session_id : null;
  }

  remember(sessionId, sessionToken) {
    if (this.storage) {
      this.storage.setItem(this.storageKey, JSON.stringify({ session_id: sessionId, session_token: sessionToken ?? null }));
    }
  }

  /** Forget the session on this device (the server keeps it until it expires or is erased). */
  forget() {
    if (this.storage) {
      try {
        this.storage.removeItem(this.storageKey);
      } catch {
        /* storage gone (private mode): nothing to forget */
      }
    }
  }

  // ---- erases still to finish (the quick exit's) ----

  /** Where erases still to finish are kept: beside the session, in the same storage. */
  get pendingEraseKey() {
    return `${this.storageKey}.erase`;
  }

  /** The erases a quick exit left to finish, `[{session_id, session_token}]`: what the DELETE needs
   *  and nothing of the conversation. Unreadable entries are left out (and dropped by the next finish). */
  get pendingErases() {
    let raw = null;
    try {
      raw = this.storage ? this.storage.getItem(this.pendingEraseKey) : null;
    } catch {
      return [];
    }
    if (!raw) return [];
    let list = null;
    try {
      list = JSON.parse(raw);
    } catch {
      return [];
    }
    if (!Array.isArray(list)) return [];
    return list
      .filter((e) => e && typeof e.session_id === "string" && UUID.test(e.session_id))
      .map((e) => ({ session_id: e.session_id, session_token: typeof e.session_token === "string" ? e.session_token : null }));
  }

  writePendingErases(list) {
    if (!this.storage) return;
    try {
      if (list.length) this.storage.setItem(this.pendingEraseKey, JSON.stringify(list));
      else this.storage.removeItem(this.pendingEraseKey);
    } catch {
      /* storage full or gone: the keepalive DELETE is all there is */
    }
  }

  // ---- HTTP ----

  /** `retries` overrides the client's for this call; `retryOn(status, data)` says which answers are
   *  retried (default 429 and 503), each after its Retry-After, or 1, 2, 4... seconds without one. */
  async request(
    method,
    path,
    {
      body,
      query,
      idempotent = method === "GET",
      signal,
      keepalive = false,
      token,
      retries,
      retryOn = retryable,
      base = this.baseUrl,
      accept = "application/json",
      raw = false,
      anonymous = false,
    } = {},
  ) {
    // (base, accept, raw: the streamed chat's. `raw` returns a success unread, as `{status, response}`.
    // `anonymous`: no credentials at all, whatever the client holds: a shared conversation's read.)
    const attempts = retries ?? this.retries;
    let url = base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    const headers = { Accept: accept };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const sessionToken = anonymous ? null : token !== undefined ? token : this.stored?.session_token;
    if (sessionToken) headers["X-Session-Token"] = sessionToken;
    if (this.getJwt && !anonymous) {
      const jwt = await this.getJwt();
      if (jwt) headers.Authorization = `Bearer ${jwt}`;
    }
    const init = { method, headers, signal, keepalive, body: body === undefined ? undefined : JSON.stringify(body) };
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await this.fetch(url, init);
      } catch (cause) {
        if (signal && signal.aborted) throw cause;
        if (!idempotent || attempt >= attempts) throw new NetworkError(cause);
        await sleep(Math.min(2 ** attempt * 250, 4000), signal);
        continue;
      }
      if (response.ok && raw) return { status: response.status, response };
      const text = await response.text();
      let data = null;
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = null;
        }
      }
      if (response.ok) return { status: response.status, data, text };
      const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
      if (attempt < attempts && retryOn(response.status, data)) {
        const wait = retryAfter ?? 2 ** attempt;
        if (wait <= this.maxRetryDelaySeconds) {
          await sleep(wait * 1000, signal);
          continue;
        }
      }
      throw new ChatvaultError(response.status, data, retryAfter);
    }
  }

  sessionPath(sessionId) {
    const id = sessionId ?? this.sessionId;
    if (!id) throw new ChatvaultError(404, { error: { code: "session_not_found", message: "No session is stored." } });
    return `/sessions/${encodeURIComponent(id)}`;
  }

  // ---- sessions ----

  /** POST /sessions: a new session, remembered in storage (its token is only ever returned here). */
  async createSession(request = {}, { signal } = {}) {
    const { data } = await this.request("POST", "/sessions", { body: request, signal, token: null });
    this.remember(data.session_id, data.session_token);
    return data;
  }

  /** The stored session from the service, or null when it is gone (deleted, expired, wrong token,
   *  tampered id): then storage is cleared. Nothing stored: null, and storage untouched. */
  async restoreSession({ signal } = {}) {
    const stored = this.stored;
    if (!stored) return null;
    if (!stored.session_id || !UUID.test(stored.session_id)) {
      this.forget();
      return null;
    }
    try {
      return await this.getSession(stored.session_id, { signal });
    } catch (error) {
      if (error instanceof ChatvaultError && (error.status === 404 || error.code === "token_required")) {
        this.forget();
        return null;
      }
      throw error;
    }
  }

  /** Restore the stored session or create one. `reset` is true when a stored one was gone.
   *  An erase a quick exit left to finish is finished first; when it cannot be, its error is thrown
   *  and nothing is restored or started. */
  async startSession(request = {}, { signal } = {}) {
    await this.finishPendingErases({ signal });
    const hadStored = this.hasStored;
    const restored = await this.restoreSession({ signal });
    if (restored) return { session: restored, restored: true, reset: false };
    const session = await this.createSession(request, { signal });
    return { session, restored: false, reset: hadStored };
  }

  async getSession(sessionId, { signal } = {}) {
    return (await this.request("GET", this.sessionPath(sessionId), { signal })).data;
  }

  /** PATCH: any of `title`, `metadata` (replaces the map), `status: "ended"`. */
  async updateSession(patch, { sessionId, signal } = {}) {
    return (await this.request("PATCH", this.sessionPath(sessionId), { body: patch, idempotent: true, signal })).data;
  }

  /** Rate a reply: `{rating: "up"|"down", comment?}`, replacing its previous feedback. PUT: a repeat
   *  sets the same, so a network failure is retried. */
  async setFeedback(messageId, feedback, { sessionId, signal } = {}) {
    const path = `${this.sessionPath(sessionId)}/messages/${encodeURIComponent(messageId)}/feedback`;
    return (await this.request("PUT", path, { body: feedback, idempotent: true, signal })).data;
  }

  /** Remove a reply's feedback. */
  async clearFeedback(messageId, { sessionId, signal } = {}) {
    const path = `${this.sessionPath(sessionId)}/messages/${encodeURIComponent(messageId)}/feedback`;
    return (await this.request("DELETE", path, { idempotent: true, signal })).data;
  }

  /** The panic button: erases the session, its messages and files, then forgets it locally, once
   *  the service has confirmed it. A 404 (erased earlier, expired) is confirmation too: the session
   *  is forgotten and the ChatvaultError thrown. Any other failure (NetworkError, 429, 503, 5xx)
   *  means NOT erased: the session is kept, so that a retry can erase it, and the error is thrown. */
  async eraseSession({ sessionId, signal, keepalive = false } = {}) {
    const path = this.sessionPath(sessionId);
    const id = sessionId ?? this.sessionId;
    try {
      const { data } = await this.request("DELETE", path, { signal, keepalive });
      if (this.sessionId === id) this.forget();
      return data;
    } catch (error) {
      if (error instanceof ChatvaultError && error.status === 404 && this.sessionId === id) this.forget();
      throw error;
    }
  }

  /** The quick exit's erase, which does not wait: records the stored session as an erase to finish
   *  (its id and token only, in `pendingErases`), forgets the session, and sends the DELETE with
   *  `keepalive` so that it can finish after the page has gone (without `getJwt` it is sent before
   *  this returns). The record goes once the service confirms the erase (2xx or 404) while the page
   *  still lives; otherwise `finishPendingErases()` (the next `startSession()`) finishes it.
   *  Resolves to true when the erase was confirmed, false when not; never rejects. */
  eraseSessionOnExit() {
    const stored = this.stored;
    if (!stored || !UUID.test(stored.session_id)) {
      this.forget(); // nothing erasable is stored
      return Promise.resolve(false);
    }
    const entry = { session_id: stored.session_id, session_token: stored.session_token };
    this.writePendingErases([...this.pendingErases.filter((e) => e.session_id !== entry.session_id), entry]);
    this.forget();
    return this.finishErase(entry, { keepalive: true }).then(
      () => true,
      () => false,
    );
  }

  /** Finish the erases a quick exit left (`pendingErases`), oldest first: a 2xx or a 404 (already
   *  gone) confirms one and removes its record. The first failure is thrown (NetworkError or
   *  ChatvaultError) and its record kept, with the later ones, for a retry. Resolves to the number
   *  finished. */
  async finishPendingErases({ signal } = {}) {
    const pending = this.pendingErases;
    for (const entry of pending) await this.finishErase(entry, { signal });
    this.writePendingErases(this.pendingErases); // drops an unreadable record
    return pending.length;
  }

  async finishErase(entry, { signal, keepalive = false } = {}) {
    try {
      await this.request("DELETE", this.sessionPath(entry.session_id), { signal, keepalive, token: entry.session_token });
    } catch (error) {
      if (!(error instanceof ChatvaultError && error.status === 404)) throw error;
    }
    this.writePendingErases(this.pendingErases.filter((e) => e.session_id !== entry.session_id));
  }

  /** POST /sessions/{id}/claim (AuthMode=both): the anonymous session becomes the signed-in user's.
   *  Sends the stored session token and the JWT from `getJwt`; afterwards the token no longer works. */
  async claim(jwt, { sessionId, signal } = {}) {
    const path = `${this.sessionPath(sessionId)}/claim`;
    const previous = this.getJwt;
    this.getJwt = () => jwt;
    try {
      const { data } = await this.request("POST", path, { idempotent: true, signal });
      this.remember(data.session_id, null);
      return data;
    } finally {
      this.getJwt = previous;
    }
  }

  /** GET /export: everything of the session (`format: "markdown"` for a readable transcript). An
   *  export too large for one answer comes as a link to its sealed object: it is downloaded and opened
   *  here (openExport), so the result is the export either way. */
  async exportSession({ format, sessionId, signal } = {}) {
    const path = `${this.sessionPath(sessionId)}/export`;
    const { data, text } = await this.request("GET", path, { query: { format }, signal });
    if (data && typeof data.download_url === "string") return this.openExport(data, { format, signal });
    return format === "markdown" ? text : data;
  }

  /** The export behind a link (`{download_url, expires_at, encryption}`, as GET /export answers a large
   *  one): downloaded (no token or JWT is sent: the link is presigned) and opened with the link's key,
   *  chunk by chunk (WebCrypto's AES-GCM). JSON parsed, or the Markdown transcript as text: as
   *  `format` says, else as the object's name ends (`.json`, `.md`). A link past its expiry, or whose
   *  object was erased, throws ChatvaultError `export_<S3's code>` (or NetworkError, where the
   *  bucket's error answer has no CORS headers and the browser hides it); an object that does not
   *  open under the key (changed, cut off, another's) throws ChatvaultError `export_broken`. */
  async openExport(link, { format, signal } = {}) {
    let response;
    try {
      response = await this.fetch(link.download_url, { method: "GET", signal, credentials: "omit" });
    } catch (cause) {
      if (signal && signal.aborted) throw cause;
      throw new NetworkError(cause);
    }
    if (!response.ok) {
      const body = await response.text();
      const code = (/<Code>([^<]+)<\/Code>/.exec(body) || [])[1];
      throw new ChatvaultError(response.status, {
        error: { code: code ? `export_${code}` : "export_unavailable", message: "The export's link did not serve it." },
      });
    }
    const text = await exportText(response, link.encryption);
    const markdown = format ? format === "markdown" : new URL(link.download_url, globalThis.location?.href).pathname.endsWith(".md");
    return markdown ? text : JSON.parse(text);
  }

  /** GET /sessions (jwt and both modes): the caller's sessions, newest activity first. */
  async listSessions({ limit, cursor, signal } = {}) {
    return (await this.request("GET", "/sessions", { query: { limit, cursor }, signal, token: null })).data;
  }

  /** DELETE /sessions (jwt and both modes): erases every session of the signed-in caller. */
  async eraseAllSessions({ signal } = {}) {
    const { data } = await this.request("DELETE", "/sessions", { signal, token: null });
    this.forget();
    return data;
  }

  // ---- messages ----

  /** Append a message. A `message_id` is chosen when none is given and re-sent on a lost
   *  connection, so a retry never stores the message twice (the service answers 200 for a repeat). */
  async appendMessage(message, { sessionId, signal } = {}) {
    const body = { ...message, message_id: message.message_id ?? uuid4() };
    return (await this.request("POST", `${this.sessionPath(sessionId)}/messages`, { body, idempotent: true, signal }))
      .data;
  }

  /** One page of history: `{items, next_cursor}`. */
  async listMessages({ order, limit, cursor, sessionId, signal } = {}) {
    return (await this.request("GET", `${this.sessionPath(sessionId)}/messages`, { query: { order, limit, cursor }, signal }))
      .data;
  }

  /** Every message, page after page: `for await (const m of client.messages()) ...` */
  async *messages({ order = "asc", limit = 100, sessionId, signal } = {}) {
    let cursor;
    do {
      const page = await this.listMessages({ order, limit, cursor, sessionId, signal });
      for (const item of page.items) yield item;
      cursor = page.next_cursor;
    } while (cursor);
  }

  /** The messages stored after those a page has shown (`known`: their message_ids), oldest first: what
   *  a page that polls its history appends. Reads newest-first pages of `limit` (default 20), each
   *  next one by its cursor (a cursor continues newest-first, as the page that returned it), until a
   *  page holds a known message or the history ends (none known: the whole history is new). One
   *  request while fewer than `limit` messages are new. `retries`: this call's (default the client's). */
  async messagesAfter(known, { limit = 20, sessionId, signal, retries } = {}) {
    const seen = new Set(known);
    const newer = [];
    const path = `${this.sessionPath(sessionId)}/messages`;
    let cursor;
    do {
      const { data } = await this.request("GET", path, { query: { order: "desc", limit, cursor }, signal, retries });
      for (const item of data.items) {
        if (seen.has(item.message_id)) return newer.reverse();
        newer.push(item);
      }
      cursor = data.next_cursor;
    } while (cursor);
    return newer.reverse();
  }

  // ---- the chat ----

  /** POST /sessions/{id}/chat: the user message and the model's reply, both stored: `{message, reply}`
   *  (`sessionId` null: the stored session). Sends a `message_id` (one is chosen when none is given)
   *  and retries with it a lost connection, 429, 502, 503, 504 and 409 `reply_in_progress`, after
   *  Retry-After (`retries`: this call's number of retries). A failure is thrown with `messageId`: a
   *  later chat with it completes the pair, and stores neither message twice. */
  async chat(sessionId, content, { messageId, metadata, signal, retries } = {}) {
    const body = chatBody(content, messageId, metadata);
    return this.sessionChat(sessionId, body, { signal, retries });
  }

  /** POST /chat: a new session and its first exchange, `{session, message, reply}`. The session is
   *  remembered as createSession remembers it (its token is sent only in this answer). When the chat
   *  fails after the session was created, the failure carries the session: it is remembered, and the
   *  chat is retried on the session's route with the same message_id. A failure thrown from there
   *  carries `session` and `messageId`: `chat(error.session.session_id, content, {messageId})` finishes
   *  it. Retried like chat(); a lost answer to the first request is retried on /chat too, and if that
   *  request had arrived, the session it created is never learned of (it expires with RetentionHours). */
  async startChat(content, { messageId, metadata, signal, retries } = {}) {
    const body = chatBody(content, messageId, metadata);
    let data;
    try {
      ({ data } = await this.request("POST", "/chat", {
        body,
        idempotent: true,
        signal,
        retries,
        retryOn: chatRetryable,
        token: null,
      }));
    } catch (error) {
      const session = error instanceof ChatvaultError ? error.session : null;
      if (!session) throw chatFailure(error, body.message_id);
      this.remember(session.session_id, session.session_token);
      const token = session.session_token ?? null;
      try {
        return { session, ...(await this.sessionChat(session.session_id, body, { signal, retries, token })) };
      } catch (failure) {
        throw chatFailure(failure, body.message_id, session);
      }
    }
    this.remember(data.session.session_id, data.session.session_token);
    return data;
  }

  async sessionChat(sessionId, body, { signal, retries, token } = {}) {
    try {
      const path = `${this.sessionPath(sessionId)}/chat`;
      const options = { body, idempotent: true, signal, retries, retryOn: chatRetryable, token };
      return (await this.request("POST", path, options)).data;
    } catch (error) {
      throw chatFailure(error, body.message_id);
    }
  }

  /** chat(), streamed: returns a ChatStream at once (the request is sent to `streamUrl`). Iterate
   *  over it for the reply's text as the model writes it; then its `message` and `reply` are the
   *  stored pair. Its request is retried as chat()'s is, until the answer has begun (see ChatStream). */
  chatStream(sessionId, content, { messageId, metadata, signal, retries } = {}) {
    const body = chatBody(content, messageId, metadata);
    const open = (reading) =>
      this.openChat(() => `${this.sessionPath(sessionId)}/chat`, body, { signal: reading, retries });
    return new ChatStream(this, open, body.message_id, { signal });
  }

  /** startChat(), streamed: a new session (the ChatStream's `session`, remembered with its token as
   *  soon as it comes), then the user message, the reply's text as it is written and the stored
   *  reply. A failure after the session was created is thrown with it (`error.session`) and the
   *  messageId: `chatStream(error.session.session_id, content, {messageId: error.messageId})` (or
   *  `chatStream(null, ...)`: the session is remembered) completes the pair. */
  startChatStream(content, { messageId, metadata, signal, retries } = {}) {
    const body = chatBody(content, messageId, metadata);
    const open = (reading) => this.openChat(() => "/chat", body, { signal: reading, retries, token: null });
    return new ChatStream(this, open, body.message_id, { signal, start: true });
  }

  /** The streamed chat's request: the event stream asked for where this browser can read one. */
  async openChat(path, body, { signal, retries, token }) {
    const streams = canStream();
    try {
      return await this.request("POST", path(), {
        body,
        idempotent: true,
        signal,
        retries,
        retryOn: chatRetryable,
        token,
        base: streams ? this.streamUrl : this.baseUrl,
        accept: streams ? EVENT_STREAM : "application/json",
        raw: true,
      });
    } catch (error) {
      const session = error instanceof ChatvaultError ? error.session : null;
      if (session) this.remember(session.session_id, session.session_token); // a JSON answer's
      throw chatFailure(error, body.message_id, session);
    }
  }

  /** POST /sessions/{id}/chat/stop: the person's Stop. True when a reply was being made in the
   *  session: a streamed one then ends within about a second, stored as far as it got
   *  (`metadata.attributes.stop_reason` "stopped"), or, when nothing was written yet, with the error
   *  `reply_stopped` (409; nothing stored, the same messageId asks again). A reply of the JSON form
   *  is not cut short. False: none was being made; nothing changed. */
  async stop(sessionId, { signal } = {}) {
    const { data } = await this.request("POST", `${this.sessionPath(sessionId)}/chat/stop`, { idempotent: true, signal });
    return Boolean(data && data.stopping);
  }

  // ---- uploads ----

  /** GET /uploads: the session's files (`{items, next_cursor}`). */
  async listUploads({ limit, cursor, sessionId, signal } = {}) {
    return (await this.request("GET", `${this.sessionPath(sessionId)}/uploads`, { query: { limit, cursor }, signal }))
      .data;
  }

  /** POST /shares: a read-only snapshot of the conversation as it is now, behind an unguessable link
   *  (`share_id`). Not retried after a network failure: a repeat would make a second link. */
  async createShare({ sessionId, signal } = {}) {
    return (await this.request("POST", `${this.sessionPath(sessionId)}/shares`, { signal })).data;
  }

  /** GET /shares: a page of the session's live links. */
  async listShares({ limit, cursor, sessionId, signal } = {}) {
    return (await this.request("GET", `${this.sessionPath(sessionId)}/shares`, { query: { limit, cursor }, signal }))
      .data;
  }

  /** DELETE /shares/{share_id}: revoke a link (from then on it is 404). */
  async revokeShare(shareId, { sessionId, signal } = {}) {
    const path = `${this.sessionPath(sessionId)}/shares/${encodeURIComponent(shareId)}`;
    return (await this.request("DELETE", path, { idempotent: true, signal })).data;
  }

  /** GET /shared/{share_id}: a page of a shared conversation, read as anyone holding the link reads
   *  it: no credentials are sent. */
  async getShared(shareId, { limit, cursor, signal } = {}) {
    const path = `/shared/${encodeURIComponent(shareId)}`;
    return (await this.request("GET", path, { query: { limit, cursor }, signal, anonymous: true })).data;
  }

  /** GET /uploads/{upload_id}: the file's state and, once stored, a short-lived `download_url`. */
  async getUpload(uploadId, { sessionId, signal } = {}) {
    const path = `${this.sessionPath(sessionId)}/uploads/${encodeURIComponent(uploadId)}`;
    return (await this.request("GET", path, { signal })).data;
  }

  /** POST /uploads for a presigned S3 POST: `{upload_id, key, url, fields, expires_at, max_bytes}`. */
  async createUpload(request, { sessionId, signal } = {}) {
    return (await this.request("POST", `${this.sessionPath(sessionId)}/uploads`, { body: request, signal })).data;
  }

  /** Upload a File/Blob: asks for a presigned POST, then posts the form (its fields, then the file)
   *  to the bucket with XMLHttpRequest, reporting `onProgress({loaded, total, fraction})`.
   *  Resolves to `{upload, status: "stored"}` once the bucket has accepted the file. */
  async uploadFile(file, { filename, contentType, onProgress, sessionId, signal } = {}) {
    const upload = await this.createUpload(
      {
        filename: filename ?? file.name ?? "file",
        content_type: contentType || file.type || "application/octet-stream",
        size: file.size,
      },
      { sessionId, signal },
    );
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    form.append("file", file);
    await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", upload.url);
      xhr.upload.onprogress = (event) => {
        if (onProgress) {
          const total = event.lengthComputable ? event.total : file.size;
          onProgress({ loaded: event.loaded, total, fraction: total ? event.loaded / total : 0 });
        }
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          if (onProgress) onProgress({ loaded: file.size, total: file.size, fraction: 1 });
          resolve();
        } else {
          const code = (/<Code>([^<]+)<\/Code>/.exec(xhr.responseText || "") || [])[1];
          const message = (/<Message>([^<]+)<\/Message>/.exec(xhr.responseText || "") || [])[1];
          reject(
            new ChatvaultError(xhr.status, {
              error: { code: code ? `upload_${code}` : "upload_refused", message: message || "The bucket refused the file." },
            }),
          );
        }
      };
      xhr.onerror = () => reject(new NetworkError(new Error("the upload did not reach the bucket")));
      xhr.onabort = () => reject(new NetworkError(new Error("upload aborted")));
      if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(form);
    });
    return { upload, status: "stored" };
  }

  // ---- the document ----

  async openapi({ signal } = {}) {
    return (await this.request("GET", "/openapi.json", { signal, token: null })).data;
  }
}

export default ChatvaultClient;
