// The LLMs page: yours and the built-ins (read-only), status badges, search.

import { call } from "./api.js";
import { badge, field, formatTime, h } from "./dom.js";

const PER_PAGE = 100;
const FORMATS = { openai: "OpenAI", azure_openai: "Azure OpenAI", gemini: "Gemini", anthropic: "Anthropic", groq_openai: "Groq (OpenAI-compatible)" };

export function formatName(format) {
  return FORMATS[format] || format;
}

function llmLink(llm) {
  return h("a", { href: `#/llms/${encodeURIComponent(llm.id)}` }, llm.displayName);
}

function table(caption, rows, { builtins }) {
  const head = builtins
    ? ["Name", "ID", "Format", "Status"]
    : ["Name", "Format", "Model", "Status", "Updated"];
  const body = rows.map((llm) =>
    builtins
      ? h("tr", null, h("td", null, llmLink(llm), h("span", { class: "tag" }, "built-in, read-only")),
          h("td", { class: "mono wrap" }, llm.id), h("td", null, formatName(llm.llmFormat)), h("td", null, badge(llm.status)))
      : h("tr", null, h("td", null, llmLink(llm)), h("td", null, formatName(llm.llmFormat)),
          h("td", { class: "mono wrap" }, llm.modelName), h("td", null, badge(llm.status)),
          h("td", null, formatTime(llm.updatedAt || llm.createdAt))),
  );
  return h(
    "div",
    { class: "table-scroll" },
    h("table", null, h("caption", null, caption),
      h("thead", null, h("tr", null, head.map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", null, body)),
  );
}

export async function renderLlmList({ root, signal, go }) {
  const search = h("input", { type: "search", autocomplete: "off", class: "search" });
  const searchField = field({ label: "Search", control: search });
  const results = h("div", { "aria-live": "polite" });
  const newButton = h("button", { type: "button", onClick: () => go("#/llms/new") }, "New LLM");
  root.append(
    h("h1", null, "LLMs"),
    h("div", { class: "toolbar" }, h("div", { class: "actions" }, newButton), searchField.wrapper),
    results,
  );

  let timer = null;
  let poll = null;
  async function load() {
    clearTimeout(poll);
    const { data } = await call("GET", "/v1/llms", {
      query: { includeDefaults: "true", perPage: PER_PAGE, search: search.value.trim() },
      signal,
    });
    if (signal.aborted) return;
    const mine = data.data.filter((llm) => !llm.isDefault);
    const builtins = data.data.filter((llm) => llm.isDefault);
    const parts = [];
    if (mine.length) parts.push(table("Your LLMs", mine, { builtins: false }));
    else if (search.value.trim()) parts.push(h("p", { class: "muted" }, "None of your LLMs matches this search."));
    else parts.push(h("p", { class: "panel" }, "You have no LLMs yet. Register your first one with New LLM: it is tested automatically."));
    if (builtins.length) parts.push(h("h2", null, "Built-in LLMs"), table("Built-in LLMs (read-only)", builtins, { builtins: true }));
    if (data.meta.total > data.data.length) {
      parts.push(h("p", { class: "muted" }, `Showing ${data.data.length} of ${data.meta.total}: search to narrow the list.`));
    }
    results.replaceChildren(...parts);
    // Refresh by itself while any LLM is still being validated.
    if (mine.some((llm) => llm.status === "pending")) poll = setTimeout(() => load().catch(() => {}), 1500);
  }
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch(() => {}), 250);
  });
  signal.addEventListener("abort", () => { clearTimeout(timer); clearTimeout(poll); });
  await load();
}
