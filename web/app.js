// The demo chat page: an anonymous session that survives reloads, on the chatvault client.
// Each message is a chat: the service stores it, asks the model (the stand-in model locally) and
// stores its reply; the page shows the reply as the model writes it (streamed), then what the service
// stored, and makes nothing up. A deployment without a model of its own (its chat routes answer 404
// `not_found`) has its own bot answer: there the page appends the message and waits for the bot's
// reply ("bot mode"). Either way it asks for what others write (a bot's back end, through the service
// writer) every so often, and shows it without a reload (the poll, below).
import { ChatvaultClient, ChatvaultError, NetworkError } from "./chatvault.js";

const $ = (id) => document.getElementById(id);
const api = document.body.dataset.api || "/api/v1";
const exitUrl = document.body.dataset.exitUrl || "about:blank";
// data-stream-api: where the streamed chat goes (on AWS the stack's StreamApiUrl); default data-api
const client = new ChatvaultClient({ baseUrl: api, streamUrl: document.body.dataset.streamApi || undefined });

const ui = {
  log: $("log"),
  notice: $("notice"),
  problem: $("problem"),
  retry: $("retry"),
  retryErase: $("retry-erase"),
  replying: $("replying"),
  replyProblem: $("reply-problem"),
  resend: $("resend"),
  retrySend: $("retry-send"),
  compose: $("compose"),
  message: $("message"),
  send: $("send"),
  stop: $("stop"),
  file: $("file"),
  progress: $("upload-progress"),
  uploads: $("uploads"),
  rename: $("rename"),
  title: $("conversation-title"),
  heading: $("title"),
  newButton: $("new"),
  newTemporary: $("new-temporary"),
  temporaryNote: $("temporary-note"),
  erase: $("erase"),
  share: $("share"),
  shareResult: $("share-result"),
  shareLink: $("share-link"),
  confirm: $("confirm-erase"),
  quickExit: $("quick-exit"),
};

const RESET_NOTICE = "Your previous conversation is no longer available, so a new one has started.";
let active = false; // a session is in use (false after an erase until "New conversation")
let replying = false; // a reply is being made: Send waits for it
let unanswered = null; // the exchange whose reply failed, which "Retry" sends again with its message_id
const WHO = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };
const NO_REPLY = "The assistant has not replied.";
const REPLYING = "The assistant is replying…";
const REPLIED = "The assistant has replied.";
const STOPPED = "The reply was stopped.";
const AGAIN = "Choose Retry to send your message again (it is not stored twice).";
const AWAITING = "Waiting for the reply…"; // bot mode: the message is stored, the bot has not answered yet
const NOT_YET = "No reply yet. It will appear here if one comes."; // bot mode, after BOT_WAIT_MS

// ---- what others write: the poll ----
// The page asks for the messages it has not shown (GET .../messages newest first, back to the newest
// one it shows: one request while fewer than 20 are new), at a cadence that follows what it waits for.
// The cost, in requests a minute for an open tab:
//   awaiting a reply: every POLL_AWAITING_MS (1 s), 60 a minute. In bot mode for at most BOT_WAIT_MS
//     (60 s: at most about 60 requests a message), then idle. For a reply being made when the page
//     opened (the session is `replying`), until it is stored, up to 120 a minute: a poll that finds no
//     reply also reads the session, to learn whether the reply is still being made.
//   visible and idle: every POLL_IDLE_MS (10 s), 6 a minute.
//   hidden (another tab, minimised): every POLL_HIDDEN_MS (60 s), 1 a minute, whatever it waits for;
//     shown again, it asks at once.
// While a reply streams nothing is asked (the stream shows it); after an erase, a quick exit, or once
// the session is gone (404), nothing more of that session. A poll that fails waits twice as long each
// time (at most POLL_HIDDEN_MS) and says nothing: the next one tells.
const POLL_AWAITING_MS = 1000;
const POLL_IDLE_MS = 10_000;
const POLL_HIDDEN_MS = 60_000;
const BOT_WAIT_MS = 60_000;
let botMode = false; // the deployment's chat routes are not there (404 not_found): its own bot answers
let streaming = false; // a streamed exchange is under way: it shows its reply itself
let awaited = null; // the reply the poll waits for: {turn, since, follow (a reply being made on load), late}
const poller = { sessionId: null, timer: 0, running: null, failures: 0 }; // running: the poll's AbortController

// ---- values as a person reads them: local times, file types and sizes ----

const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const dayAndClock = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const fullTime = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

/** A service time (ISO-8601 UTC) in the person's own time zone: the time alone when it is today. */
function localTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toDateString() === new Date().toDateString() ? clock.format(date) : dayAndClock.format(date);
}

/** A <time> element showing `iso` in local time (`prefix` before it); its title has the full date. */
function timeElement(iso, prefix = "") {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = prefix + localTime(iso);
  const date = new Date(iso);
  if (!Number.isNaN(date.getTime())) time.title = fullTime.format(date);
  return time;
}

// A content type as a person names it: [one, several]; one not listed is named by its type.
const TYPE_NAMES = {
  "image/png": ["PNG image", "PNG images"],
  "image/jpeg": ["JPEG image", "JPEG images"],
  "image/webp": ["WebP image", "WebP images"],
  "image/gif": ["GIF image", "GIF images"],
  "image/heic": ["HEIC image", "HEIC images"],
  "application/pdf": ["PDF document", "PDF documents"],
  "text/plain": ["Text file", "text files"],
  "text/csv": ["CSV file", "CSV files"],
  "text/markdown": ["Markdown file", "Markdown files"],
  "application/json": ["JSON file", "JSON files"],
};
function typeName(contentType, { plural = false } = {}) {
  const known = TYPE_NAMES[contentType];
  if (known) return known[plural ? 1 : 0];
  return `${contentType || "unknown"} file${plural ? "s" : ""}`;
}

function sizeName(bytes) {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 ? 1 : 0;
  return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: digits }).format(value)} ${units[unit]}`;
}

function notice(text) {
  ui.notice.textContent = text;
}
let retryErase = null; // what "Try erasing again" does while an erase has not gone through
function problem(text, { retry = null } = {}) {
  ui.problem.textContent = text;
  retryErase = retry;
  ui.retry.hidden = !retry;
}
function describe(error) {
  if (error instanceof NetworkError) return "The service cannot be reached. Check the connection and try again.";
  if (error instanceof ChatvaultError) {
    if (error.code === "rate_limited") return "Too many requests just now. Please wait a moment and try again.";
    return `${error.message} (${error.code})`;
  }
  return String(error);
}

function setActive(on) {
  active = on;
  for (const el of [ui.message, ui.file, ui.title, ui.erase, ui.share, ...ui.rename.querySelectorAll("button")]) {
    el.disabled = !on;
  }
  ui.send.disabled = !on || replying;
}

/** While a reply is being made: the status says so, Send waits and Stop is shown. Afterwards the
 *  status says how it ended (`said`: the reply is complete, or stopped; nothing after a failure, which
 *  the alert says). Screen readers hear these, and the reply once complete, not each piece of it. */
function setReplying(on, said = "") {
  replying = on;
  ui.send.disabled = !active || on;
  const stopFocused = document.activeElement === ui.stop;
  ui.stop.hidden = !on;
  ui.stop.disabled = false;
  if (!on && stopFocused) ui.message.focus(); // the button goes: focus goes where the next message is typed
  ui.replying.textContent = on ? REPLYING : said;
}

/** A chat that got no reply: said in its own alert, beside the conversation, with "Retry" when a
 *  retry can finish it (`turn`: what to send again). */
function replyProblem(text, turn = null) {
  ui.replyProblem.textContent = text;
  unanswered = turn;
  ui.resend.hidden = !turn;
}

/** Whether sending the same message_id again can finish the exchange: the model failed (the message
 *  is stored and waits for its reply), another reply was being made, or no answer came at all. */
function canRetry(error) {
  if (error instanceof NetworkError) return true;
  if (!(error instanceof ChatvaultError)) return false;
  if (error.status === 409) return error.code === "reply_in_progress" || error.code === "reply_stopped";
  return [429, 502, 503, 504].includes(error.status);
}

function describeChat(error) {
  if (error instanceof ChatvaultError) {
    if (error.code === "reply_stopped") return "The reply was stopped before it began.";
    const wait = error.retryAfter ? ` Please wait ${error.retryAfter} seconds first.` : "";
    if (error.code === "model_unavailable" && error.status === 503) return `The assistant is busy just now.${wait}`;
    if (error.code === "model_unavailable") return "The assistant is unavailable just now.";
    if (error.code === "model_timeout") return "The assistant took too long to answer.";
    if (error.code === "reply_in_progress") return "Another reply in this conversation is still being made.";
  }
  return describe(error);
}

/** A temporary conversation says, in one sentence, exactly when it disappears (its `expires_at`,
 *  moved later by each message); any other says nothing. */
function showExpiry(session) {
  const temporary = Boolean(session?.temporary);
  ui.temporaryNote.hidden = !temporary;
  ui.temporaryNote.dataset.expiresAt = temporary ? session.expires_at : "";
  ui.temporaryNote.textContent = temporary
    ? `This is a temporary conversation: it will be deleted for good at ${localTime(session.expires_at)}, ` +
      "unless you write again before then."
    : "";
}

/** After an exchange, a temporary conversation's new expiry (each message moves it). */
async function refreshExpiry(sessionId) {
  if (ui.temporaryNote.hidden || client.sessionId !== sessionId) return;
  try {
    const session = await client.getSession(sessionId);
    if (client.sessionId === sessionId) showExpiry(session);
  } catch {
    // the next exchange, or the poll that finds the session gone, says more
  }
}

function showTitle(session) {
  ui.title.value = session.title ?? "";
  ui.heading.textContent = session.title || "Chat";
  document.title = session.title ? `${session.title} - Chat` : "Chat";
}

const stoppedReply = (message) => message.metadata?.attributes?.stop_reason === "stopped";

/** A message in the log (appended, or in place of `replace`: the reply as it was being written). */
function render(message, { pending = false, replace = null } = {}) {
  const li = document.createElement("li");
  li.className = message.role + (pending ? " pending" : "");
  li.dataset.messageId = message.message_id ?? "";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = WHO[message.role] ?? message.role;
  const text = document.createElement("span");
  text.className = "content";
  text.textContent = message.content;
  li.append(who, text);
  if (message.role === "assistant" && stoppedReply(message)) {
    // stopped by the person: stored as far as it was written
    li.classList.add("stopped");
    const note = document.createElement("span");
    note.className = "note";
    note.textContent = "Stopped";
    li.append(note);
  }
  if (message.created_at) li.append(timeElement(message.created_at));
  if (message.role === "assistant" && message.message_id && !pending) li.append(thumbs(message));
  if (replace) replace.replaceWith(li);
  else ui.log.append(li);
  ui.log.scrollTop = ui.log.scrollHeight;
  return li;
}

const RATINGS = { up: ["Good reply", "👍"], down: ["Bad reply", "👎"] };

/** Thumbs on a stored reply: a toggle each; pressing the pressed one again removes the feedback. The
 *  service's answer sets what is shown; a failure is said, and the buttons keep what is stored. */
function thumbs(message) {
  const group = document.createElement("span");
  group.className = "feedback";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Feedback on this reply");
  const buttons = {};
  const show = (feedback) => {
    for (const [rating, button] of Object.entries(buttons)) {
      button.setAttribute("aria-pressed", String(feedback?.rating === rating));
    }
  };
  for (const [rating, [label, symbol]] of Object.entries(RATINGS)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = symbol;
    button.setAttribute("aria-label", label);
    button.addEventListener("click", async () => {
      const pressed = button.getAttribute("aria-pressed") === "true";
      for (const each of Object.values(buttons)) each.disabled = true;
      try {
        const stored = pressed
          ? await client.clearFeedback(message.message_id)
          : await client.setFeedback(message.message_id, { rating });
        show(stored.feedback);
        notice(stored.feedback ? "Thank you for your feedback." : "Your feedback was removed.");
      } catch (error) {
        problem(describe(error));
      } finally {
        for (const each of Object.values(buttons)) each.disabled = false;
      }
    });
    buttons[rating] = button;
    group.append(button);
  }
  show(message.feedback);
  return group;
}

/** The reply as the model writes it: an assistant's message that grows. The log is a live region:
 *  it and the message are marked busy while it grows (assistive technology waits for the complete
 *  reply, which then replaces it, instead of reading every piece), and the status says when it is. */
function writing() {
  const li = render({ role: "assistant", content: "" });
  li.classList.add("writing");
  li.setAttribute("aria-busy", "true");
  ui.log.setAttribute("aria-busy", "true");
  return li;
}

function clearConversation() {
  ui.log.replaceChildren();
  ui.log.removeAttribute("aria-busy");
  if (!replying) ui.replying.textContent = "";
  replyProblem("");
  ui.uploads.replaceChildren();
  ui.progress.hidden = true;
  ui.shareResult.hidden = true; // a link belongs to the conversation it was made for
  ui.shareLink.value = "";
}

async function loadHistory(session) {
  const messages = [];
  const files = [];
  await Promise.all([
    (async () => {
      for await (const message of client.messages({ order: "asc", limit: 100 })) messages.push(message);
    })(),
    (async () => {
      let cursor;
      do {
        const page = await client.listUploads({ limit: 100, cursor });
        files.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
    })(),
  ]);
  clearConversation();
  let li = null;
  for (const message of messages) li = render(message);
  files.sort((a, b) => a.created_at.localeCompare(b.created_at));
  for (const upload of files) showFile(upload);
  const last = messages.at(-1);
  const asked = messages.findLastIndex((message) => message.role === "user");
  const answered = messages.slice(asked + 1).some((message) => message.role === "assistant");
  if (session.replying && asked !== -1 && !answered) {
    // Its reply is still being made (the page was closed or reloaded meanwhile): picked up once stored.
    const question = messages[asked];
    const waiting = ui.log.children[asked];
    follow({ content: question.content, messageId: question.message_id, sessionId: client.sessionId, li: waiting });
  } else if (li && last.role === "user") {
    // The last message got no reply (the model failed, or the page closed while it was made): Retry
    // sends it again with its message_id, which completes the pair and stores nothing twice.
    mark(li, "failed", "No reply yet");
    const turn = { content: last.content, messageId: last.message_id, sessionId: client.sessionId, li };
    replyProblem(`${NO_REPLY} ${AGAIN}`, turn);
  }
}

async function start({ fresh = false, temporary = false } = {}) {
  problem("");
  stopPolling(); // the conversation shown until now is no longer asked about
  setActive(false);
  try {
    // A quick exit's erase that may not have gone through comes first: nothing is shown or started
    // before the service has confirmed it (and nothing of that conversation is kept to show).
    await client.finishPendingErases();
  } catch (error) {
    problem(`An earlier conversation has not been erased yet: it is still on the server. ${describe(error)}`, {
      retry: retryStart,
    });
    return;
  }
  try {
    if (fresh) client.forget();
    const { session, restored, reset } = await client.startSession(temporary ? { temporary: true } : {});
    if (reset) notice(RESET_NOTICE);
    showTitle(session);
    showExpiry(session);
    if (restored) await loadHistory(session);
    else clearConversation();
    setActive(true);
    startPolling(client.sessionId); // (after loadHistory: a reply being made is awaited by it)
    document.body.dataset.sessionReady = "true";
  } catch (error) {
    problem(`The conversation could not be started. ${describe(error)}`);
  }
}

async function retryStart() {
  await start();
  if (active) notice("The earlier conversation is erased: nothing of it is kept, here or on the server.");
}

/** The stored session turned out to be gone while in use (erased elsewhere, expired). */
async function lost() {
  client.forget();
  await start();
  notice(RESET_NOTICE);
}

/** Marks a user message as waiting for its reply, answered, or failed (`note` says how). */
function mark(li, state, note = "") {
  li.classList.toggle("pending", state === "pending");
  li.classList.toggle("failed", state === "failed");
  li.querySelector(".note")?.remove();
  if (note) {
    const span = document.createElement("span");
    span.className = "note";
    span.textContent = note;
    li.append(span);
  }
}

/** The person's message is stored (the service's copy: its id and time). */
function markStored(turn, message) {
  if (!message) return;
  mark(turn.li, "answered");
  turn.li.dataset.messageId = message.message_id;
  if (!turn.li.querySelector("time")) turn.li.append(timeElement(message.created_at));
}

/** One exchange: the message and its reply, stored by the service (POST .../chat, streamed: the reply
 *  grows as the model writes it, then the stored reply takes its place). The page retries nothing by
 *  itself (retries: 0): a failure is said at once, and "Retry" sends the same message_id again, which
 *  stores neither message twice and completes the pair (a stored pair comes back whole). Where the
 *  chat route is not there (404 `not_found`, not `session_not_found`: the deployment has no model of
 *  its own, and the attempt changed nothing), the page is in bot mode for its life: see ask(). */
async function exchange(turn) {
  if (botMode) return ask(turn);
  replyProblem("");
  mark(turn.li, "pending");
  setReplying(true);
  streaming = true;
  let bubble = null; // the reply as it is being written
  let said = "";
  try {
    const stream = client.chatStream(turn.sessionId, turn.content, { messageId: turn.messageId, retries: 0 });
    for await (const text of stream) {
      if (client.sessionId !== turn.sessionId) break; // erased or replaced meanwhile: nothing to show
      if (!bubble) {
        markStored(turn, stream.message);
        bubble = writing();
      }
      bubble.querySelector(".content").append(text);
      ui.log.scrollTop = ui.log.scrollHeight;
    }
    if (client.sessionId !== turn.sessionId) return stream.close();
    markStored(turn, stream.message);
    render(stream.reply, { replace: bubble });
    said = stoppedReply(stream.reply) ? STOPPED : REPLIED;
    refreshExpiry(turn.sessionId);
  } catch (error) {
    bubble?.remove(); // what was written of a reply that failed is not stored: it goes
    if (client.sessionId !== turn.sessionId) return;
    if (error instanceof ChatvaultError && error.status === 404 && error.code === "not_found") {
      botMode = true; // asked below, once the exchange has ended
    } else if (error instanceof ChatvaultError && error.status === 404) {
      turn.li.remove();
      await lost();
      ui.message.value = turn.content;
      return;
    } else if (canRetry(error)) {
      mark(turn.li, "failed", "No reply yet");
      replyProblem(`${NO_REPLY} ${describeChat(error)} ${AGAIN}`, turn);
    } else {
      mark(turn.li, "failed", "Not sent");
      replyProblem(`Not sent: ${describeChat(error)}`);
      if (!ui.message.value) ui.message.value = turn.content;
    }
  } finally {
    streaming = false;
    ui.log.removeAttribute("aria-busy");
    setReplying(false, said);
  }
  if (botMode) await ask(turn);
}

/** A reply the service is still making, for a page that did not ask for it (reloaded, or opened
 *  again, while it was made): said as being made, and shown once stored. The poll asks every second;
 *  when the session is no longer replying without a reply stored (the model failed, or its function
 *  died), the message is marked and Retry offered, as after a reload. */
function follow(turn) {
  mark(turn.li, "pending");
  setReplying(true);
  awaited = { turn, since: Date.now(), follow: true, late: false };
}

/** Bot mode: the person's message is appended (POST .../messages, role user, with its message_id: a
 *  retry stores it once), then its reply awaited: the bot's back end writes it (the service writer),
 *  and the poll shows it as it lands. Send stays usable meanwhile (nothing here is being made). */
async function ask(turn) {
  replyProblem("");
  mark(turn.li, "pending");
  try {
    const message = await client.appendMessage(
      { role: "user", content: turn.content, message_id: turn.messageId },
      { sessionId: turn.sessionId },
    );
    if (client.sessionId !== turn.sessionId) return;
    markStored(turn, message);
  } catch (error) {
    if (client.sessionId !== turn.sessionId) return;
    if (error instanceof ChatvaultError && error.status === 404) {
      turn.li.remove();
      await lost();
      ui.message.value = turn.content;
      return;
    }
    mark(turn.li, "failed", "Not sent");
    if (canRetry(error)) {
      replyProblem(`Not sent: ${describe(error)} ${AGAIN}`, turn);
    } else {
      replyProblem(`Not sent: ${describe(error)}`);
      if (!ui.message.value) ui.message.value = turn.content;
    }
    return;
  }
  awaited = { turn, since: Date.now(), follow: false, late: false };
  ui.replying.textContent = AWAITING;
  schedulePoll();
}

/** The wait for a reply is over (`said`: how it ended, for the status; nothing when the alert says it). */
function endWait(said = "") {
  const ended = awaited;
  awaited = null;
  if (!ended) return;
  if (ended.follow) setReplying(false, said);
  else ui.replying.textContent = said;
}

/** The message_ids the log shows (the person's own from the moment it is sent: the page chose it). */
function shownIds() {
  return new Set([...ui.log.children].map((li) => li.dataset.messageId).filter(Boolean));
}

function cadence() {
  if (document.visibilityState === "hidden") return POLL_HIDDEN_MS;
  return awaited && !awaited.late ? POLL_AWAITING_MS : POLL_IDLE_MS;
}

function schedulePoll(ms = Math.min(cadence() * 2 ** poller.failures, POLL_HIDDEN_MS)) {
  clearTimeout(poller.timer);
  if (poller.sessionId && !poller.running) poller.timer = setTimeout(poll, ms);
}

/** The poll of `sessionId` (the one in use: a session that changes stops it). */
function startPolling(sessionId) {
  clearTimeout(poller.timer);
  poller.running?.abort();
  Object.assign(poller, { sessionId, running: null, failures: 0 });
  schedulePoll();
}

/** Nothing more is asked for (an erase, a quick exit, another conversation, the session gone): a
 *  request under way is cancelled and a wait ends unsaid. */
function stopPolling() {
  clearTimeout(poller.timer);
  poller.running?.abort();
  Object.assign(poller, { sessionId: null, running: null, failures: 0 });
  endWait();
}

async function poll() {
  const sessionId = poller.sessionId;
  if (!sessionId || poller.running) return;
  if (client.sessionId !== sessionId) return stopPolling(); // erased or replaced (in another tab too)
  if (streaming) return schedulePoll();
  const running = new AbortController();
  poller.running = running;
  const current = () => poller.running === running; // not stopped meanwhile
  let gone = false;
  try {
    const newer = await client.messagesAfter(shownIds(), { sessionId, signal: running.signal, retries: 0 });
    poller.failures = 0;
    if (current() && !streaming) await land(newer, sessionId, running);
  } catch (error) {
    if (!current()) return;
    gone = error instanceof ChatvaultError && error.status === 404;
    poller.failures += 1;
    if (awaited?.follow && !gone) {
      // as a chat that got no answer: said at once, with Retry
      mark(awaited.turn.li, "failed", "No reply yet");
      replyProblem(`${NO_REPLY} ${describeChat(error)} ${AGAIN}`, awaited.turn);
      endWait();
    }
  }
  if (!current()) return;
  poller.running = null;
  if (gone || client.sessionId !== sessionId) {
    const stillShown = client.sessionId === sessionId;
    stopPolling();
    if (gone && stillShown) await lost(); // erased elsewhere, or expired: as any call that finds it gone
    return;
  }
  if (awaited && !awaited.follow && !awaited.late && Date.now() - awaited.since >= BOT_WAIT_MS) {
    awaited.late = true; // the bot has not answered: said, and the poll slows to idle; a late reply still shows
    mark(awaited.turn.li, "answered", "No reply yet");
    ui.replying.textContent = NOT_YET;
  }
  schedulePoll();
}

/** Shows what the poll found (each message once, in the order stored) and ends the wait for a reply
 *  once one has come. A reply being made on load that ends without one: marked, with Retry. */
async function land(newer, sessionId, running) {
  const show = (messages) => {
    const shown = shownIds();
    const fresh = messages.filter((message) => !shown.has(message.message_id));
    for (const message of fresh) render(message);
    const reply = fresh.find((message) => message.role === "assistant");
    if (reply && unanswered) {
      // a reply came after all for the message whose reply had failed: its alert no longer holds
      mark(unanswered.li, "answered");
      replyProblem("");
    }
    return reply;
  };
  let reply = show(newer);
  if (!awaited) return;
  if (!reply && awaited.follow) {
    if ((await client.getSession(sessionId, { signal: running.signal })).replying) return;
    if (poller.running !== running) return;
    // it may have been stored just before the session said so
    reply = show(await client.messagesAfter(shownIds(), { sessionId, signal: running.signal, retries: 0 }));
    if (poller.running !== running) return;
    if (!reply) {
      mark(awaited.turn.li, "failed", "No reply yet");
      replyProblem(`${NO_REPLY} ${AGAIN}`, awaited.turn);
      return endWait();
    }
  }
  if (!reply) return;
  mark(awaited.turn.li, "answered");
  endWait(stoppedReply(reply) ? STOPPED : REPLIED);
}

// Hidden, the page asks once a minute; shown again, at once (what came meanwhile, and a reply awaited).
document.addEventListener("visibilitychange", () => {
  schedulePoll(document.visibilityState === "visible" ? 0 : undefined);
});

ui.compose.addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = ui.message.value.trim();
  if (!content || !active || replying) return;
  problem("");
  const messageId = crypto.randomUUID();
  const li = render({ role: "user", content, message_id: messageId }, { pending: true });
  ui.message.value = "";
  ui.message.focus();
  // a new message goes on from here: the one whose reply failed stays in the log, without its Retry
  await exchange({ content, messageId, sessionId: client.sessionId, li });
});

// Stop: the reply being made stops within about a second and is stored as far as it was written
// (marked Stopped); it comes as the end of the stream (or, after a reload, as the stored reply).
ui.stop.addEventListener("click", async () => {
  if (!replying) return;
  ui.stop.disabled = true;
  try {
    // false: no reply was being made yet (the chat has not reached the service): Stop can be chosen again
    if (!(await client.stop()) && replying) ui.stop.disabled = false;
  } catch (error) {
    if (error instanceof ChatvaultError && error.status === 404) return; // the exchange says it
    ui.stop.disabled = false;
    problem(`Not stopped: ${describe(error)}`);
  }
});

ui.retrySend.addEventListener("click", () => {
  if (!unanswered || replying) return;
  ui.message.focus(); // the button hides while the retry runs
  exchange(unanswered);
});

ui.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.compose.requestSubmit();
  }
});

ui.rename.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem("");
  const title = ui.title.value.trim();
  try {
    const session = await client.updateSession({ title: title || null });
    showTitle(session);
    showExpiry(session);
    notice(session.title ? `Renamed to "${session.title}".` : "Title cleared.");
  } catch (error) {
    if (error instanceof ChatvaultError && error.status === 404) return lost();
    problem(`Not renamed: ${describe(error)}`);
  }
});

// ---- files ----

const STATES = { stored: "stored", pending: "not received" }; // the service's upload states, as shown
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fills a list item of Files: the file's type, size and when it was added (names are never stored),
 *  its state and, once stored, a Download link. */
function fillFile(li, { content_type, size, created_at }, state, uploadId = null) {
  const what = document.createElement("span");
  what.className = "file";
  what.textContent = `${typeName(content_type)} · ${sizeName(size)}`;
  const shown = document.createElement("span");
  shown.className = "state";
  shown.textContent = state;
  li.replaceChildren(what, " · ");
  if (created_at) li.append(timeElement(created_at, "added "), " · ");
  li.append(shown);
  if (uploadId) li.append(" · ", downloadLink(uploadId));
}

/** An upload as the service lists it (GET .../uploads). */
function showFile(upload) {
  const li = document.createElement("li");
  li.dataset.uploadId = upload.upload_id;
  li.dataset.status = upload.status;
  const stored = upload.status === "stored";
  fillFile(li, upload, STATES[upload.status] ?? upload.status, stored ? upload.upload_id : null);
  ui.uploads.append(li);
  return li;
}

/** A link that asks for the file's short-lived download URL when chosen, then follows it (the service
 *  serves it as an attachment: the browser downloads it, and the page stays). */
function downloadLink(uploadId) {
  const link = document.createElement("a");
  link.href = "#";
  link.className = "download";
  link.textContent = "Download";
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    problem("");
    try {
      const { download_url } = await client.getUpload(uploadId);
      window.location.assign(download_url);
    } catch (error) {
      if (error instanceof ChatvaultError && error.code === "upload_not_found") {
        problem("This file is no longer available: it has expired or was removed.");
      } else if (error instanceof ChatvaultError && error.status === 404) {
        await lost();
      } else {
        problem(`The file could not be downloaded. ${describe(error)}`);
      }
    }
  });
  return link;
}

/** The service's upload once it is stored (the bucket's event checks a file after it arrives, within
 *  seconds), or null if it is not stored within about half a minute. */
async function whenStored(uploadId, sessionId) {
  for (const wait of [250, 500, 1000, 1000, 2000, 2000, 3000, 5000, 5000, 10000]) {
    await sleep(wait);
    if (client.sessionId !== sessionId) return null; // erased or replaced meanwhile
    try {
      return await client.getUpload(uploadId, { sessionId });
    } catch (error) {
      if (!(error instanceof ChatvaultError && error.code === "upload_not_found")) throw error;
    }
  }
  return null;
}

// The deployment's upload rules (its AllowedUploadTypes and MaxUploadBytes) from its OpenAPI document,
// which narrows CreateUploadRequest to them: read once, when a file is refused.
let uploadRules = null;
function rulesForUploads() {
  uploadRules ??= client
    .openapi()
    .then((doc) => {
      const fields = doc?.components?.schemas?.CreateUploadRequest?.properties ?? {};
      const types = Array.isArray(fields.content_type?.enum) ? fields.content_type.enum : [];
      if (types.length) ui.file.accept = types.join(",");
      return { types, maxBytes: Number.isFinite(fields.size?.maximum) ? fields.size.maximum : null };
    })
    .catch(() => {
      uploadRules = null; // read again next time
      return { types: [], maxBytes: null };
    });
  return uploadRules;
}
const anyOf = new Intl.ListFormat("en", { style: "long", type: "disjunction" });

/** Why the service refused to take a file (422), in a sentence; null for any other failure. */
async function refusal(error, file) {
  if (!(error instanceof ChatvaultError) || error.status !== 422) return null;
  const fields = error.details.map((detail) => detail.field);
  if (fields.includes("body.content_type")) {
    const { types } = await rulesForUploads();
    const names = [...new Set(types.map((type) => typeName(type, { plural: true })))];
    return `This type of file cannot be attached.${names.length ? ` You can attach ${anyOf.format(names)}.` : ""}`;
  }
  if (fields.includes("body.size")) {
    if (file.size === 0) return "This file is empty: there is nothing to attach.";
    const { maxBytes } = await rulesForUploads();
    return `This file is too large to attach.${maxBytes ? ` Files of up to ${sizeName(maxBytes)} can be attached.` : ""}`;
  }
  if (fields.includes("body.filename")) return "This file's name cannot be sent: rename the file, then attach it.";
  return "This file cannot be attached.";
}

ui.file.addEventListener("change", async () => {
  const file = ui.file.files && ui.file.files[0];
  if (!file) return;
  problem("");
  const sessionId = client.sessionId;
  const facts = { content_type: file.type || "application/octet-stream", size: file.size };
  const item = document.createElement("li");
  fillFile(item, facts, "uploading…");
  ui.uploads.append(item);
  ui.progress.hidden = false;
  ui.progress.value = 0;
  let upload = null;
  try {
    ({ upload } = await client.uploadFile(file, {
      onProgress: ({ fraction }) => {
        ui.progress.value = Math.round(fraction * 100);
        fillFile(item, facts, `uploading, ${Math.round(fraction * 100)}%`);
      },
    }));
  } catch (error) {
    ui.progress.hidden = true;
    if (error instanceof ChatvaultError && error.status === 404 && !error.code.startsWith("upload_")) {
      await lost();
      return;
    }
    const why = await refusal(error, file);
    if (why) {
      item.remove(); // refused before any upload was made: there is nothing to list
      problem(why);
    } else {
      fillFile(item, facts, "not stored");
      item.dataset.status = "failed";
      const refused = error instanceof ChatvaultError && error.code.startsWith("upload_");
      problem(`The file was not stored. ${refused ? "The file storage refused it: please try again." : describe(error)}`);
    }
    return;
  } finally {
    ui.file.value = "";
    ui.progress.hidden = true;
  }
  // In the bucket: the service checks it (its type and size) and lists it as stored.
  item.dataset.uploadId = upload.upload_id;
  fillFile(item, facts, "checking…");
  try {
    const stored = await whenStored(upload.upload_id, sessionId);
    if (!item.isConnected) return;
    if (stored) {
      fillFile(item, stored, STATES.stored, stored.upload_id);
      item.dataset.status = "stored";
      notice(`${file.name} is stored with this conversation.`);
    } else {
      fillFile(item, facts, "sent, not confirmed yet"); // the service has not checked it (yet)
      item.dataset.status = "pending";
    }
  } catch (error) {
    if (!item.isConnected) return;
    if (error instanceof ChatvaultError && error.status === 404) return lost();
    fillFile(item, facts, "not confirmed");
    item.dataset.status = "pending";
    problem(`The file was sent, but the service could not be asked whether it is stored. ${describe(error)}`);
  }
});

for (const [button, temporary] of [[ui.newButton, false], [ui.newTemporary, true]]) {
  button.addEventListener("click", async () => {
    notice("");
    await start({ fresh: true, temporary });
    if (active) notice(temporary ? "A new temporary conversation has started." : "A new conversation has started.");
    ui.message.focus();
  });
}

async function erase() {
  problem("");
  stopPolling(); // from the panic button on, nothing of this conversation is asked for
  try {
    const receipt = await client.eraseSession();
    const { messages, uploads } = receipt.erased;
    notice(
      `Erased at ${localTime(receipt.deleted_at)}: ${messages} message${messages === 1 ? "" : "s"} and ` +
        `${uploads} file${uploads === 1 ? "" : "s"}. Nothing of this conversation is kept, here or on the server. ` +
        `Choose "New conversation" to start again.`,
    );
  } catch (error) {
    if (error instanceof ChatvaultError && error.status === 404) {
      notice("This conversation was already erased. Nothing of it is kept.");
    } else {
      // not confirmed: the session is kept (the client forgets it only once the service confirms)
      problem(`Not erased: this conversation is still on the server. ${describe(error)}`, { retry: erase });
      startPolling(client.sessionId); // kept: still shown, and asked about
      return;
    }
  }
  clearConversation();
  showTitle({ title: null });
  showExpiry(null);
  setActive(false);
  ui.newButton.focus();
}

ui.share.addEventListener("click", share);
ui.erase.addEventListener("click", () => {
  ui.confirm.returnValue = "";
  ui.confirm.showModal();
});
ui.confirm.addEventListener("close", () => {
  if (ui.confirm.returnValue === "erase") erase();
  else ui.erase.focus();
});

ui.retryErase.addEventListener("click", () => {
  if (retryErase) retryErase();
});

// Quick exit: Escape twice within a second (or the button) erases without asking and leaves at once.
let leaving = false;
/** Share: a link to a read-only snapshot of the conversation as it is now (shared.html#<share_id>:
 *  the id rides in the fragment, which no server sees). The link is shown, selected, and copied when
 *  the browser allows it. */
async function share() {
  ui.share.disabled = true;
  try {
    const made = await client.createShare();
    const link = new URL(`shared.html#${made.share_id}`, location.href).href;
    ui.shareLink.value = link;
    ui.shareResult.hidden = false;
    ui.shareLink.select();
    const until = dayAndClock.format(new Date(made.expires_at));
    let copied = false;
    try {
      await navigator.clipboard.writeText(link);
      copied = true;
    } catch {
      /* no clipboard permission: the selected field is there to copy from */
    }
    notice(`${copied ? "Link copied." : "Copy the link below."} Anyone with it can read this conversation as it is now, until ${until}.`);
  } catch (error) {
    problem(error instanceof ChatvaultError && error.code === "not_found" ? "Sharing is turned off here." : describe(error));
  } finally {
    ui.share.disabled = false;
  }
}

function quickExit() {
  if (leaving) return;
  leaving = true;
  stopPolling();
  // Records the erase (the session's id and token only) and sends the DELETE with keepalive, which
  // outlives the page; if it does not go through, the next visit finishes it before showing anything.
  client.eraseSessionOnExit();
  document.body.replaceChildren();
  // The browser's history keeps the title the page had: make it neutral, and replace the entry so
  // that the history takes the neutral one (a title change alone reaches it only just after loading).
  document.title = "Chat";
  history.replaceState(null, "", location.href);
  window.location.replace(exitUrl);
}
let lastEscape = -Infinity; // (0 would count an Escape in the first second after loading as the second)
document.addEventListener(
  "keydown",
  (event) => {
    if (event.key !== "Escape") return;
    const now = performance.now();
    if (now - lastEscape < 1000) {
      event.preventDefault();
      quickExit();
    }
    lastEscape = now;
  },
  true,
);
ui.quickExit.addEventListener("click", quickExit);

start();
