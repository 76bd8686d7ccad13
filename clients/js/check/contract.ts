// Compile-time check (tsc --noEmit): chatvault.d.ts declares the shapes the OpenAPI document
// describes, in both directions, and the client covers every route of the document.
// `openapi.d.ts` beside this file is generated from layers/common/chatvault/openapi.json by
// openapi-typescript (tests/browser/test_client_types.py does it before each check; never edited).
import type { components, paths } from "./openapi";
import type * as C from "../chatvault";

type S = components["schemas"];

// Identical types (not merely assignable): an extra, missing, renamed or retyped field fails.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? Equal<keyof A, keyof B> : false) : false;
type Assert<T extends true> = T;

type Methods = "get" | "post" | "patch" | "delete" | "put";
type Op<P extends keyof paths, M extends Methods> = NonNullable<paths[P][M]>;
type Json<P extends keyof paths, M extends Methods, Status extends number> = Op<P, M> extends {
  responses: { [K in Status]: { content: { "application/json": infer T } } };
}
  ? T
  : never;
type Body<P extends keyof paths, M extends Methods> = Op<P, M> extends {
  requestBody?: { content: { "application/json": infer T } };
}
  ? T
  : never;

// ---- the shapes ----
export type Shapes = [
  Assert<Same<C.Session, S["SessionOut"]>>,
  Assert<Same<C.CreatedSession, S["CreatedSessionOut"]>>,
  Assert<Same<C.CreateSessionRequest, S["CreateSessionRequest"]>>,
  Assert<Same<C.UpdateSessionRequest, S["UpdateSessionRequest"]>>,
  Assert<Same<C.MessageMetadata, S["MessageMetadata"]>>,
  Assert<Same<C.AppendMessageRequest, S["AppendMessageRequest"]>>,
  Assert<Same<C.Message, S["MessageOut"]>>,
  Assert<Same<C.MessagePage, S["MessageListOut"]>>,
  Assert<Same<C.SessionPage, S["SessionListOut"]>>,
  Assert<Same<C.CreateUploadRequest, S["CreateUploadRequest"]>>,
  Assert<Same<C.UploadForm, S["UploadOut"]>>,
  Assert<Same<C.DeleteReceipt, S["DeleteReceiptOut"]>>,
  Assert<Same<C.DeleteReceipt["erased"], S["ErasedCounts"]>>,
  Assert<Same<C.ErrorDetail, S["ErrorDetail"]>>,
  Assert<Same<C.ErrorBody, S["ErrorBody"]>>,
  Assert<Same<C.ErrorResponse, S["ErrorOut"]>>,
  Assert<Same<C.ChatRequest, S["ChatRequest"]>>,
  Assert<Same<C.StartChatRequest, S["StartChatRequest"]>>,
  Assert<Same<C.ChatResult, S["ChatOut"]>>,
  Assert<Same<C.StartedChat, S["StartedChatOut"]>>,
  Assert<Same<C.StopReply, S["StopReplyOut"]>>,
];

// ---- every route: what the client sends and gets back is what the document says ----
type Sessions = "/api/v1/sessions";
type OneSession = "/api/v1/sessions/{session_id}";
type Messages = "/api/v1/sessions/{session_id}/messages";
type Uploads = "/api/v1/sessions/{session_id}/uploads";
type SessionChat = "/api/v1/sessions/{session_id}/chat";
type Chat = "/api/v1/chat";
type Stop = "/api/v1/sessions/{session_id}/chat/stop";
export type Routes = [
  Assert<Same<Body<Sessions, "post">, C.CreateSessionRequest>>,
  Assert<Same<Json<Sessions, "post", 201>, C.CreatedSession>>,
  Assert<Same<Json<Sessions, "get", 200>, C.SessionPage>>,
  Assert<Same<Json<OneSession, "get", 200>, C.Session>>,
  Assert<Same<Body<OneSession, "patch">, C.UpdateSessionRequest>>,
  Assert<Same<Json<OneSession, "patch", 200>, C.Session>>,
  Assert<Same<Json<OneSession, "delete", 200>, C.DeleteReceipt>>,
  Assert<Same<Body<Messages, "post">, C.AppendMessageRequest>>,
  Assert<Same<Json<Messages, "post", 201>, C.Message>>,
  Assert<Same<Json<Messages, "post", 200>, C.Message>>,
  Assert<Same<Json<Messages, "get", 200>, C.MessagePage>>,
  Assert<Same<Body<Uploads, "post">, C.CreateUploadRequest>>,
  Assert<Same<Json<Uploads, "post", 201>, C.UploadForm>>,
  Assert<Same<Json<OneSession, "get", 404>, C.ErrorResponse>>,
  Assert<Same<Body<SessionChat, "post">, C.ChatRequest>>,
  Assert<Same<Json<SessionChat, "post", 201>, C.ChatResult>>,
  Assert<Same<Json<SessionChat, "post", 200>, C.ChatResult>>,
  Assert<Same<Body<Chat, "post">, C.StartChatRequest>>,
  Assert<Same<Json<Chat, "post", 201>, C.StartedChat>>,
  Assert<Same<Json<Chat, "post", 200>, C.StartedChat>>,
  Assert<Same<Json<Stop, "post", 200>, C.StopReply>>,
];

// Routes newer than some documents (the rights issue's): checked where the document has them.
type Absent = { readonly absent: unique symbol };
type Schema<N extends string> = N extends keyof S ? S[N] : Absent;
type WhereDocumented<A, B> = [A] extends [Absent] ? true : Same<A, B>;
export type NewerShapes = [
  Assert<WhereDocumented<Schema<"UploadInfoOut">, C.Upload>>,
  Assert<WhereDocumented<Schema<"UploadInfoListOut">, C.UploadPage>>,
  Assert<WhereDocumented<Schema<"UploadDownloadOut">, C.UploadDownload>>,
  Assert<WhereDocumented<Schema<"ExportedUploadOut">, C.ExportedUpload>>,
  Assert<WhereDocumented<Schema<"SessionExportOut">, C.SessionExport>>,
  Assert<WhereDocumented<Schema<"ExportLinkOut">, C.ExportLink>>,
  Assert<WhereDocumented<Schema<"ExportEncryptionOut">, C.ExportEncryption>>,
  Assert<WhereDocumented<Schema<"EraseAllReceiptOut">, C.EraseAllReceipt>>,
  Assert<WhereDocumented<Schema<"FeedbackOut">, C.Feedback>>,
  Assert<WhereDocumented<Schema<"FeedbackRequest">, C.FeedbackRequest>>,
  Assert<WhereDocumented<Schema<"ShareOut">, C.Share>>,
  Assert<WhereDocumented<Schema<"ShareListOut">, C.SharePage>>,
  Assert<WhereDocumented<Schema<"RevokedShareOut">, C.RevokedShare>>,
  Assert<WhereDocumented<Schema<"SharedMessageOut">, C.SharedMessage>>,
  Assert<WhereDocumented<Schema<"SharedConversationOut">, C.SharedConversation>>,
];

// The client covers every route of the document: a new route in the document fails here until the
// client (and this list) covers it.
type DocRoutes = {
  [P in keyof paths]: {
    [M in Methods]: paths[P][M] extends undefined ? never : `${Uppercase<M>} ${P & string}`;
  }[Methods];
}[keyof paths];
type ClientRoutes =
  | "POST /api/v1/sessions" // createSession, startSession
  | "GET /api/v1/sessions" // listSessions (jwt mode)
  | "DELETE /api/v1/sessions" // eraseAllSessions (jwt, both)
  | "POST /api/v1/sessions/{session_id}/claim" // claim (both)
  | "GET /api/v1/sessions/{session_id}/export" // exportSession
  | "GET /api/v1/sessions/{session_id}/uploads" // listUploads
  | "GET /api/v1/sessions/{session_id}/uploads/{upload_id}" // getUpload
  | "PUT /api/v1/sessions/{session_id}/messages/{message_id}/feedback" // setFeedback
  | "DELETE /api/v1/sessions/{session_id}/messages/{message_id}/feedback" // clearFeedback
  | "POST /api/v1/sessions/{session_id}/shares" // createShare
  | "GET /api/v1/sessions/{session_id}/shares" // listShares
  | "DELETE /api/v1/sessions/{session_id}/shares/{share_id}" // revokeShare
  | "GET /api/v1/shared/{share_id}" // getShared
  | "GET /api/v1/sessions/{session_id}" // getSession, restoreSession
  | "PATCH /api/v1/sessions/{session_id}" // updateSession
  | "DELETE /api/v1/sessions/{session_id}" // eraseSession
  | "GET /api/v1/sessions/{session_id}/messages" // listMessages, messages(), messagesAfter
  | "POST /api/v1/sessions/{session_id}/messages" // appendMessage
  | "POST /api/v1/sessions/{session_id}/uploads" // createUpload, uploadFile
  | "POST /api/v1/sessions/{session_id}/chat" // chat, startChat's retry, chatStream
  | "POST /api/v1/sessions/{session_id}/chat/stop" // stop
  | "POST /api/v1/chat" // startChat, startChatStream
  | "GET /api/v1/openapi.json"; // openapi
// The service writer's routes (/api/v1/service/, SigV4) are for the chatbot's back end, not a browser.
type BrowserRoutes = Exclude<DocRoutes, `${string} /api/v1/service/${string}`>;
// every documented browser route is the client's; the client may know routes a document predates
export type Coverage = Assert<[BrowserRoutes] extends [ClientRoutes] ? true : false>;

// ---- the methods' signatures use those shapes ----
declare const client: C.ChatvaultClient;
declare const link: C.ExportLink;
export async function usage(): Promise<void> {
  const created: S["CreatedSessionOut"] = await client.createSession({ title: "t", metadata: { a: "b" } });
  const got: S["SessionOut"] = await client.getSession(created.session_id);
  const patched: S["SessionOut"] = await client.updateSession({ title: null });
  const message: S["MessageOut"] = await client.appendMessage({ role: "user", content: "hi" });
  const page: S["MessageListOut"] = await client.listMessages({ order: "desc", limit: 10 });
  for await (const m of client.messages()) {
    const each: S["MessageOut"] = m;
    void each;
  }
  const newer: S["MessageOut"][] = await client.messagesAfter(new Set([message.message_id]), { limit: 20 });
  const fromIds: S["MessageOut"][] = await client.messagesAfter([message.message_id], { sessionId: "s", retries: 0 });
  const form: S["UploadOut"] = await client.createUpload({ filename: "a.txt", content_type: "text/plain", size: 1 });
  const pair: S["ChatOut"] = await client.chat(null, "hi", { messageId: message.message_id });
  const started = await client.startChat("hello", { metadata: { model: null } });
  const asDocumented: S["StartedChatOut"] = started;
  const token: string | null | undefined = started.session.session_token; // always there: startChat made it
  const stream = client.chatStream(null, "hi", { messageId: message.message_id, signal: new AbortController().signal });
  let text = "";
  for await (const delta of stream) text += delta;
  const streamedPair: S["ChatOut"] = await stream.result();
  const storedReply: S["MessageOut"] | null = stream.reply;
  const startedStream = client.startChatStream("hello");
  const startedPair: S["StartedChatOut"] = await startedStream.result();
  const newToken: string | null | undefined = (await startedStream.result()).session.session_token;
  const stopping: S["StopReplyOut"]["stopping"] = await client.stop(null);
  const receipt: S["DeleteReceiptOut"] = await client.eraseSession();
  const rated: S["MessageOut"] = await client.setFeedback(message.message_id, { rating: "up", comment: null });
  const unrated: S["MessageOut"] = await client.clearFeedback(message.message_id, { sessionId: "s" });
  void [rated, unrated];
  const share: S["ShareOut"] = await client.createShare();
  const links: S["ShareListOut"] = await client.listShares({ limit: 10 });
  const revoked: S["RevokedShareOut"] = await client.revokeShare(share.share_id);
  const shared: S["SharedConversationOut"] = await client.getShared(share.share_id, { limit: 5 });
  void [links, revoked, shared];
  const exported: C.SessionExport = await client.exportSession();
  const transcript: string = await client.exportSession({ format: "markdown" });
  const opened: C.SessionExport | string = await client.openExport(link);
  const openedJson: C.SessionExport = await client.openExport(link, { format: "json" });
  void [got, patched, message, page, newer, fromIds, form, pair, asDocumented, token, receipt];
  void [exported, transcript, opened, openedJson];
  void [text, streamedPair, storedReply, startedPair, newToken, stopping];
}
