// Copy-ready code against this gateway for this LLM. Keys appear as environment variables only.

import { apiBase } from "./api.js";
import { copyText, h, nextId } from "./dom.js";

function snippets(llmId) {
  const api = apiBase.href.replace(/\/$/, "");
  const persona = JSON.stringify({ personaConfig: { name: "Ava", llmId, systemPrompt: "You are Ava, a helpful assistant." } });
  return [
    ["Session token (curl)",
      `curl -s -X POST "${api}/v1/auth/session-token" \\
  -H "Authorization: Bearer $LLM_GATEWAY_API_KEY" -H "Content-Type: application/json" \\
  -d '${persona}'
# -> {"sessionToken": "...", "sessionId": "...", "expiresAt": "..."}`],
    ["OpenAI SDK (Python)",
      `import os
from openai import OpenAI

# SESSION_TOKEN: the sessionToken minted above (it pins the LLM ${llmId})
client = OpenAI(base_url="${api}/v1", api_key=os.environ["SESSION_TOKEN"])
stream = client.chat.completions.create(
    model="${llmId}",  # ignored: the session decides the LLM
    messages=[{"role": "user", "content": "Hello!"}],
    stream=True,
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)`],
    ["OpenAI SDK (JavaScript)",
      `import OpenAI from "openai";

// SESSION_TOKEN: the sessionToken minted above (it pins the LLM ${llmId})
const client = new OpenAI({ baseURL: "${api}/v1", apiKey: process.env.SESSION_TOKEN });
const stream = await client.chat.completions.create({
  model: "${llmId}", // ignored: the session decides the LLM
  messages: [{ role: "user", content: "Hello!" }],
  stream: true,
});
for await (const chunk of stream) {
  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
}`],
    ["Chat completions (curl)",
      `curl -N "${api}/v1/chat/completions" \\
  -H "Authorization: Bearer $SESSION_TOKEN" -H "Content-Type: application/json" \\
  -d '{"messages": [{"role": "user", "content": "Hello!"}], "stream": true}'`],
  ];
}

export function snippetsSection(llmId) {
  const headingId = nextId("snippets");
  return h(
    "section",
    { "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Snippets"),
    h("p", { class: "muted" }, "Your backend mints a session token with the account API key; your app streams with the token."),
    snippets(llmId).map(([title, code]) => {
      const titleId = nextId("snippet");
      return h(
        "figure",
        { class: "snippet", "aria-labelledby": titleId },
        h("div", { class: "snippet-head" },
          h("figcaption", { id: titleId }, h("strong", null, title)),
          h("button", { type: "button", class: "secondary", onClick: () => copyText(code, title) }, `Copy ${title}`)),
        h("pre", null, h("code", null, code)),
      );
    }),
  );
}
