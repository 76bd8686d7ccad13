// The shared conversation's page (shared.html#<share_id>): read-only, no credentials, no storage of
// its own. Reads GET /shared/{share_id} page by page ("Show more").
import { ChatvaultClient, ChatvaultError, NetworkError, memoryStorage } from "./chatvault.js";

const $ = (id) => document.getElementById(id);
// nothing of the reader's own conversation is read or sent: a storage of its own, and no credentials
const client = new ChatvaultClient({ baseUrl: document.body.dataset.api || "/api/v1", storage: memoryStorage() });
const WHO = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };
const GONE = "This shared conversation is not available: the link is wrong, was revoked, or has expired.";
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const shareId = decodeURIComponent(location.hash.slice(1));
let cursor = null;

function show(message) {
  const li = document.createElement("li");
  li.className = message.role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = WHO[message.role] ?? message.role;
  const text = document.createElement("span");
  text.className = "content";
  text.textContent = message.content;
  const time = document.createElement("time");
  time.dateTime = message.created_at;
  time.textContent = when.format(new Date(message.created_at));
  li.append(who, text, time);
  $("log").append(li);
}

async function load() {
  $("more").disabled = true;
  try {
    const page = await client.getShared(shareId, { cursor });
    if (page.title) {
      $("title").textContent = page.title;
      document.title = `${page.title} (shared)`;
    }
    $("expiry").textContent = `Shared ${when.format(new Date(page.created_at))}; the link works until ${when.format(new Date(page.expires_at))}.`;
    $("expiry").hidden = false;
    for (const message of page.items) show(message);
    if (!cursor && page.items.length === 0) $("notice").textContent = "This conversation had no messages when it was shared.";
    cursor = page.next_cursor;
    $("more").hidden = !cursor;
  } catch (error) {
    $("more").hidden = true;
    if (error instanceof NetworkError) $("problem").textContent = "The service cannot be reached. Check the connection and reload.";
    else if (error instanceof ChatvaultError && error.status === 404) $("problem").textContent = GONE;
    else $("problem").textContent = "This shared conversation could not be read just now. Reload to try again.";
  } finally {
    $("more").disabled = false;
    document.body.dataset.loaded = "true";
  }
}

$("more").addEventListener("click", load);
if (shareId) load();
else {
  $("problem").textContent = GONE;
  document.body.dataset.loaded = "true";
}
