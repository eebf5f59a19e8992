// Try it: mint a session token for this LLM, then stream /v1/chat/completions into the page
// (fetch + ReadableStream), showing the time to first token. Tokens stay in memory only.

import { apiUrl, call, describeError } from "./api.js";
import { field, h, nextId } from "./dom.js";

const tokens = new Map(); // llmId + system prompt -> {token, expiresAt}
const REFRESH_MARGIN_MS = 30_000;

export function forgetSessionTokens() {
  tokens.clear();
}

async function sessionToken(llmId, systemPrompt, signal) {
  const cacheKey = `${llmId}\u0000${systemPrompt}`;
  const cached = tokens.get(cacheKey);
  if (cached && Date.parse(cached.expiresAt) - Date.now() > REFRESH_MARGIN_MS) return cached.token;
  const persona = { name: "Lab", llmId };
  if (systemPrompt) persona.systemPrompt = systemPrompt;
  const { data } = await call("POST", "/v1/auth/session-token", {
    body: { personaConfig: persona, clientLabel: "lab" },
    signal,
  });
  tokens.set(cacheKey, { token: data.sessionToken, expiresAt: data.expiresAt });
  return data.sessionToken;
}

/** Splits an SSE byte stream into `data:` payloads (events may arrive split anywhere). */
async function* sseData(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line.startsWith("data:")) yield line.slice(5).trimStart();
    }
  }
}

/** ``onRequest(requestId)``: each chat request's id, for the page's request list. */
export function chatSection({ llmId, signal, onRequest = () => {} }) {
  const headingId = nextId("chat");
  const log = h("div", { role: "log", "aria-label": "Conversation", class: "chat-log" });
  const message = field({ label: "Message", control: h("textarea", { rows: 3 }) });
  const prompt = field({
    label: "System prompt",
    control: h("input", { type: "text", autocomplete: "off" }),
    help: "Optional: the persona's instructions, sent as the first system message.",
  });
  const send = h("button", { type: "submit" }, "Send");
  const reset = h("button", { type: "button", class: "secondary" }, "New conversation");
  const ttft = h("p", { class: "ttft-readout", "aria-live": "polite" });
  const history = [];
  let streaming = null;

  function turn(who, text, cls = "") {
    const body = h("span", { class: cls }, text);
    log.append(h("p", { class: "turn" }, h("span", { class: "who" }, `${who}:`), body));
    log.scrollTop = log.scrollHeight;
    return body;
  }

  // A reasoning model's thoughts (reasoningFormat "parsed"), folded away under the answer.
  function thoughtsUnder(answer) {
    const text = h("span", { class: "muted thought-text" });
    const fold = h("details", { class: "thoughts", hidden: true }, h("summary", null, "Thoughts"), text);
    answer.parentElement.after(fold);
    return { fold, text };
  }

  reset.addEventListener("click", () => {
    if (streaming) streaming.abort();
    history.length = 0;
    log.replaceChildren();
    ttft.textContent = "";
    message.control.focus();
  });

  const form = h("form", { novalidate: true }, message.wrapper, prompt.wrapper, h("div", { class: "actions" }, send, reset, ttft));
  message.control.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = message.control.value.trim();
    if (!text) return message.setError("Type a message first.");
    message.setError("");
    send.disabled = true;
    streaming = new AbortController();
    const stop = () => streaming && streaming.abort();
    signal.addEventListener("abort", stop, { once: true });
    history.push({ role: "user", content: text });
    turn("You", text);
    message.control.value = "";
    const answer = turn("LLM", "");
    const thoughts = thoughtsUnder(answer);
    ttft.textContent = "";
    let content = "";
    let thought = "";
    try {
      const token = await sessionToken(llmId, prompt.control.value.trim(), streaming.signal);
      const started = performance.now();
      const response = await fetch(apiUrl("/v1/chat/completions"), {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ model: llmId, messages: history, stream: true }),
        cache: "no-store",
        credentials: "omit",
        signal: streaming.signal,
      });
      onRequest(response.headers.get("x-request-id"));
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        const error = (body && body.error) || {};
        throw new Error(`${error.message || `HTTP ${response.status}`} (${error.code || response.status})`);
      }
      let first = null;
      for await (const data of sseData(response.body, streaming.signal)) {
        if (data === "[DONE]") break;
        let chunk;
        try { chunk = JSON.parse(data); } catch { continue; }
        if (chunk.error) throw new Error(`${chunk.error.message || "The stream failed."} (${chunk.error.code || "error"})`);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.reasoning_content) {
          thought += delta.reasoning_content;
          thoughts.text.textContent = thought;
          thoughts.fold.hidden = false;
        }
        if (delta && delta.content) {
          if (first === null) {
            first = performance.now() - started;
            ttft.textContent = `TTFT ${Math.round(first)} ms`;
          }
          content += delta.content;
          answer.textContent = content;
          log.scrollTop = log.scrollHeight;
        }
      }
      history.push({ role: "assistant", content });
    } catch (error) {
      history.pop();
      answer.className = "error";
      answer.textContent = error instanceof Error && !("status" in error) && error.name !== "AbortError"
        ? error.message
        : describeError(error);
    } finally {
      signal.removeEventListener("abort", stop);
      streaming = null;
      send.disabled = false;
    }
  });

  return h(
    "section",
    { "aria-labelledby": headingId, class: "panel" },
    h("h2", { id: headingId }, "Try it"),
    h("p", { class: "muted" }, "Chats through the gateway with a short-lived session token for this LLM, exactly as your app will."),
    log,
    form,
  );
}
