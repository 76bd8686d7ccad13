// The demo chat page: an anonymous session that survives reloads, on the chatvault client.
// The page writes `user` messages only; there is no bot here and no answer is made up.
import { ChatvaultClient, ChatvaultError, NetworkError } from "./chatvault.js";

const $ = (id) => document.getElementById(id);
const api = document.body.dataset.api || "/api/v1";
const exitUrl = document.body.dataset.exitUrl || "about:blank";
const client = new ChatvaultClient({ baseUrl: api });

const ui = {
  log: $("log"),
  notice: $("notice"),
  problem: $("problem"),
  retry: $("retry"),
  retryErase: $("retry-erase"),
  compose: $("compose"),
  message: $("message"),
  send: $("send"),
  file: $("file"),
  progress: $("upload-progress"),
  uploads: $("uploads"),
  rename: $("rename"),
  title: $("conversation-title"),
  heading: $("title"),
  newButton: $("new"),
  erase: $("erase"),
  confirm: $("confirm-erase"),
  quickExit: $("quick-exit"),
};

const RESET_NOTICE = "Your previous conversation is no longer available, so a new one has started.";
let active = false; // a session is in use (false after an erase until "New conversation")

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
  for (const el of [ui.message, ui.send, ui.file, ui.title, ui.erase, ...ui.rename.querySelectorAll("button")]) {
    el.disabled = !on;
  }
}

function showTitle(session) {
  ui.title.value = session.title ?? "";
  ui.heading.textContent = session.title || "Chat";
  document.title = session.title ? `${session.title} - Chat` : "Chat";
}

function render(message, { pending = false } = {}) {
  const li = document.createElement("li");
  li.className = message.role + (pending ? " pending" : "");
  li.dataset.messageId = message.message_id ?? "";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = message.role === "user" ? "You" : message.role;
  const text = document.createElement("span");
  text.className = "content";
  text.textContent = message.content;
  li.append(who, text);
  ui.log.append(li);
  ui.log.scrollTop = ui.log.scrollHeight;
  return li;
}

function clearConversation() {
  ui.log.replaceChildren();
  ui.uploads.replaceChildren();
  ui.progress.hidden = true;
}

async function loadHistory() {
  clearConversation();
  for await (const message of client.messages({ order: "asc", limit: 100 })) render(message);
}

async function start({ fresh = false } = {}) {
  problem("");
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
    const { session, restored, reset } = await client.startSession();
    if (reset) notice(RESET_NOTICE);
    showTitle(session);
    if (restored) await loadHistory();
    else clearConversation();
    setActive(true);
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

ui.compose.addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = ui.message.value.trim();
  if (!content || !active) return;
  problem("");
  const messageId = crypto.randomUUID();
  const li = render({ role: "user", content, message_id: messageId }, { pending: true });
  ui.message.value = "";
  ui.message.focus();
  try {
    const stored = await client.appendMessage({ role: "user", content, message_id: messageId });
    li.classList.remove("pending");
    li.dataset.messageId = stored.message_id;
  } catch (error) {
    if (error instanceof ChatvaultError && error.status === 404) {
      li.remove();
      await lost();
      ui.message.value = content;
      return;
    }
    li.classList.add("failed");
    li.classList.remove("pending");
    problem(`Not sent: ${describe(error)}`);
    if (!ui.message.value) ui.message.value = content;
  }
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
    notice(session.title ? `Renamed to "${session.title}".` : "Title cleared.");
  } catch (error) {
    if (error instanceof ChatvaultError && error.status === 404) return lost();
    problem(`Not renamed: ${describe(error)}`);
  }
});

ui.file.addEventListener("change", async () => {
  const file = ui.file.files && ui.file.files[0];
  if (!file) return;
  problem("");
  const item = document.createElement("li");
  const label = `${file.name} (${file.size} bytes)`;
  item.textContent = `${label}: uploading…`;
  ui.uploads.append(item);
  ui.progress.hidden = false;
  ui.progress.value = 0;
  try {
    const { upload, status } = await client.uploadFile(file, {
      onProgress: ({ fraction }) => {
        ui.progress.value = Math.round(fraction * 100);
        item.textContent = `${label}: uploading, ${Math.round(fraction * 100)}%`;
      },
    });
    item.textContent = `${label}: ${status}`;
    item.dataset.uploadId = upload.upload_id;
    item.dataset.status = status;
    notice(`${file.name} is stored with this conversation.`);
  } catch (error) {
    item.textContent = `${label}: not stored`;
    item.dataset.status = "failed";
    if (error instanceof ChatvaultError && error.status === 404 && !error.code.startsWith("upload_")) {
      await lost();
    } else {
      problem(`The file was not stored: ${describe(error)}`);
    }
  } finally {
    ui.file.value = "";
  }
});

ui.newButton.addEventListener("click", async () => {
  notice("");
  await start({ fresh: true });
  if (active) notice("A new conversation has started.");
  ui.message.focus();
});

async function erase() {
  problem("");
  try {
    const receipt = await client.eraseSession();
    const { messages, uploads } = receipt.erased;
    notice(
      `Erased at ${receipt.deleted_at}: ${messages} message${messages === 1 ? "" : "s"} and ` +
        `${uploads} file${uploads === 1 ? "" : "s"}. Nothing of this conversation is kept, here or on the server. ` +
        `Choose "New conversation" to start again.`,
    );
  } catch (error) {
    if (error instanceof ChatvaultError && error.status === 404) {
      notice("This conversation was already erased. Nothing of it is kept.");
    } else {
      // not confirmed: the session is kept (the client forgets it only once the service confirms)
      problem(`Not erased: this conversation is still on the server. ${describe(error)}`, { retry: erase });
      return;
    }
  }
  clearConversation();
  showTitle({ title: null });
  setActive(false);
  ui.newButton.focus();
}

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
function quickExit() {
  if (leaving) return;
  leaving = true;
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
