// New / Edit LLM: the fields each spec needs, inline checks, Test (dry run, nothing saved), Save.
// The endpoint key field is a password field that is emptied as soon as it has been sent.

import { call, describeError } from "./api.js";
import { announce, field, h } from "./dom.js";
import { formatName } from "./llms.js";
import { noteRotation } from "./llm_page.js";
import { reportRegion } from "./report.js";

const URL_HELP = {
  openai: "The chat completions URL, e.g. https://api.openai.com/v1/chat/completions (a base ending in /v1 works too).",
  azure_openai: "Your resource endpoint, e.g. https://my-resource.openai.azure.com (then fill Deployment and API version), or a …/openai/v1 base.",
  gemini: "The API base, https://generativelanguage.googleapis.com, or the full streaming URL.",
  anthropic: "The API base, https://api.anthropic.com, or the full Messages URL …/v1/messages (compatible servers too).",
  groq_openai: "The OpenAI-compatible base, https://api.groq.com/openai/v1 (or its …/chat/completions URL).",
};
const MODEL_HELP = {
  openai: "The model name the endpoint expects, e.g. gpt-4o-mini.",
  azure_openai: "The model, or with an /openai/v1 base URL the deployment name.",
  gemini: "e.g. gemini-2.5-flash.",
  anthropic: "e.g. claude-sonnet-4-5.",
  groq_openai: "e.g. openai/gpt-oss-20b or qwen/qwen3-32b.",
};
const MODEL_PATTERN = /^[A-Za-z0-9._:/@+-]+$/;
const DEPLOYMENT_PATTERN = /^[A-Za-z0-9._-]+$/;
const API_VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
// Where the API's field errors (details[].field) land in the form.
const SERVER_FIELDS = { displayName: "name", urls: "url", modelName: "model", secret: "key", deploymentName: "deployment", apiVersion: "apiVersion", llmFormat: "format" };

function input(props) {
  return h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...props });
}

export async function renderLlmForm({ root, signal, go }, llmId) {
  const existing = llmId ? (await call("GET", `/v1/llms/${encodeURIComponent(llmId)}`, { signal })).data : null;
  if (signal.aborted) return;
  if (existing && existing.isDefault) {
    root.append(h("h1", null, existing.displayName), h("p", { class: "notice" }, "Built-in LLMs are read-only."));
    return;
  }

  const format = h("select", null, Object.entries({ openai: 0, azure_openai: 0, gemini: 0, anthropic: 0, groq_openai: 0 }).map(([value]) =>
    h("option", { value }, formatName(value))));
  const fields = {
    name: field({ label: "Display name", control: input({ maxlength: 120 }) }),
    format: field({ label: "Format", control: format, help: "The API specification the endpoint speaks." }),
    url: field({ label: "URL", control: input({ type: "url", inputmode: "url" }), help: URL_HELP.openai }),
    model: field({ label: "Model", control: input({ maxlength: 200 }), help: MODEL_HELP.openai }),
    deployment: field({ label: "Deployment", control: input({ maxlength: 64 }), help: "The Azure deployment name (with a resource-endpoint URL).", hidden: true }),
    apiVersion: field({ label: "API version", control: input({ placeholder: "2024-10-21" }), help: "The Azure api-version, YYYY-MM-DD or YYYY-MM-DD-preview.", hidden: true }),
    reasoningEffort: field({
      label: "Reasoning effort",
      control: h("select", null, ["", "default", "low", "medium", "high"].map((v) => h("option", { value: v }, v || "(not set)"))),
      help: "For reasoning models: how hard the model thinks (OpenAI reasoning_effort, Gemini thinking, Anthropic thinking budget).",
    }),
    reasoningFormat: field({
      label: "Thoughts",
      control: h("select", null, ["", "hidden", "parsed", "raw"].map((v) => h("option", { value: v }, v || "(hidden, the default)"))),
      help: "What clients get of a reasoning model's thoughts: hidden (only the answer), parsed (in delta.reasoning_content) or raw.",
    }),
    key: field({
      label: "Endpoint API key",
      control: h("input", { type: "password", autocomplete: "off", autocapitalize: "off", spellcheck: "false" }),
      help: existing
        ? `Current key ${existing.secretHint || ""}. Leave empty to keep it; a new key is tested first and replaces the current one only if it passes.`
        : "Stored encrypted; never shown again (only its last characters).",
    }),
  };
  const c = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.control]));
  if (existing) {
    c.name.value = existing.displayName;
    c.format.value = existing.llmFormat;
    c.url.value = (existing.urls[0] || {}).url || "";
    c.model.value = existing.modelName;
    c.deployment.value = existing.deploymentName || "";
    c.apiVersion.value = existing.apiVersion || "";
    c.reasoningEffort.value = existing.reasoningEffort || "";
    c.reasoningFormat.value = existing.reasoningFormat || "";
  }

  function syncFormat() {
    const azure = c.format.value === "azure_openai";
    fields.deployment.wrapper.hidden = !azure;
    fields.apiVersion.wrapper.hidden = !azure;
    fields.url.help.textContent = URL_HELP[c.format.value];
    fields.model.help.textContent = MODEL_HELP[c.format.value];
  }
  c.format.addEventListener("change", syncFormat);
  syncFormat();

  const checks = {
    name: () => (c.name.value.trim() ? "" : "Give the LLM a name."),
    url: () => {
      const value = c.url.value.trim();
      if (!value) return "Enter the endpoint URL.";
      let parsed;
      try { parsed = new URL(value); } catch { return "This is not a URL: it starts with https://"; }
      if (!["https:", "http:"].includes(parsed.protocol)) return "The URL must start with https://";
      if (parsed.username || parsed.password) return "Do not put credentials in the URL: use Endpoint API key.";
      return "";
    },
    model: () => {
      const value = c.model.value.trim();
      if (!value) return "Enter the model name.";
      return MODEL_PATTERN.test(value) ? "" : "Letters, digits and . _ : / @ + - only.";
    },
    deployment: () => (c.format.value !== "azure_openai" || !c.deployment.value.trim() || DEPLOYMENT_PATTERN.test(c.deployment.value.trim())
      ? "" : "Letters, digits and . _ - only."),
    apiVersion: () => (c.format.value !== "azure_openai" || !c.apiVersion.value.trim() || API_VERSION_PATTERN.test(c.apiVersion.value.trim())
      ? "" : "Use the form 2024-10-21 (or 2024-10-21-preview)."),
    key: () => {
      const value = c.key.value;
      if (!value && !existing) return "Enter the key your endpoint expects.";
      return /\s/.test(value) ? "The key must not contain spaces or line breaks." : "";
    },
  };
  const touched = new Set();
  for (const [name, check] of Object.entries(checks)) {
    c[name].addEventListener("input", () => touched.add(name));
    c[name].addEventListener("blur", () => { if (touched.has(name)) fields[name].setError(check()); });
  }
  function checkAll() {
    let first = null;
    for (const [name, check] of Object.entries(checks)) {
      const problem = check();
      fields[name].setError(problem);
      if (problem && !first) first = c[name];
    }
    if (first) first.focus();
    return !first;
  }

  function body({ forTest }) {
    const azure = c.format.value === "azure_openai";
    const out = {
      displayName: c.name.value.trim(),
      llmFormat: c.format.value,
      urls: [{ url: c.url.value.trim() }],
      modelName: c.model.value.trim(),
    };
    if (azure && c.deployment.value.trim()) out.deploymentName = c.deployment.value.trim();
    if (azure && c.apiVersion.value.trim()) out.apiVersion = c.apiVersion.value.trim();
    if (c.reasoningEffort.value) out.reasoningEffort = c.reasoningEffort.value;
    if (c.reasoningFormat.value) out.reasoningFormat = c.reasoningFormat.value;
    if (c.key.value) out.secret = c.key.value;
    if (!existing || forTest) return out;
    // An update sends only what changed (anything else would queue a needless revalidation).
    const patch = {};
    if (out.displayName !== existing.displayName) patch.displayName = out.displayName;
    if (out.llmFormat !== existing.llmFormat) patch.llmFormat = out.llmFormat;
    if (out.urls[0].url !== ((existing.urls[0] || {}).url || "")) patch.urls = out.urls;
    if (out.modelName !== existing.modelName) patch.modelName = out.modelName;
    if ((out.deploymentName || null) !== (existing.deploymentName || null)) patch.deploymentName = out.deploymentName || null;
    if ((out.apiVersion || null) !== (existing.apiVersion || null)) patch.apiVersion = out.apiVersion || null;
    if ((out.reasoningEffort || null) !== (existing.reasoningEffort || null)) patch.reasoningEffort = out.reasoningEffort || null;
    if ((out.reasoningFormat || null) !== (existing.reasoningFormat || null)) patch.reasoningFormat = out.reasoningFormat || null;
    if (out.secret) patch.secret = out.secret;
    return patch;
  }

  function showServerErrors(error) {
    const details = Array.isArray(error.details) ? error.details : [];
    let placed = false;
    for (const detail of details) {
      const target = SERVER_FIELDS[String(detail.field || "").split(".")[0]];
      if (target && fields[target]) {
        fields[target].setError(detail.message);
        placed = true;
      }
    }
    return placed;
  }

  const status = h("div", { role: "status", class: "notice" });
  const testResult = h("div");
  const testButton = h("button", { type: "button", class: "secondary" }, "Test");
  const saveButton = h("button", { type: "submit" }, "Save");
  const cancel = h("a", { href: existing ? `#/llms/${encodeURIComponent(existing.id)}` : "#/llms", class: "button secondary" }, "Cancel");
  let idempotency = { body: "", key: "" };

  async function busy(button, work) {
    testButton.disabled = saveButton.disabled = true;
    button.setAttribute("aria-busy", "true");
    try { await work(); } finally {
      testButton.disabled = saveButton.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  testButton.addEventListener("click", () => {
    if (existing && !c.key.value) {
      fields.key.setError("Test sends the config with a key: enter the key to test (nothing is saved).");
      c.key.focus();
      return;
    }
    if (!checkAll()) return;
    busy(testButton, async () => {
      status.textContent = "Testing the endpoint… nothing is saved.";
      testResult.replaceChildren();
      try {
        const { data } = await call("POST", "/v1/llms/test", { body: body({ forTest: true }), signal });
        status.textContent = data.compatible
          ? "Test passed: this config is compatible. Nothing was saved."
          : "Test found problems (below). Nothing was saved.";
        testResult.replaceChildren(reportRegion(data, { title: "Validation report" }));
        announce(status.textContent);
      } catch (error) {
        if (!showServerErrors(error)) status.textContent = describeError(error);
        else status.textContent = "Fix the fields marked above.";
      }
    });
  });

  const form = h(
    "form",
    { class: "panel", novalidate: true },
    h("div", { class: "form-grid" }, fields.name.wrapper, fields.format.wrapper),
    fields.url.wrapper,
    h("div", { class: "form-grid" }, fields.model.wrapper, fields.deployment.wrapper, fields.apiVersion.wrapper),
    fields.key.wrapper,
    h("div", { class: "actions" }, testButton, saveButton, cancel),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!checkAll()) return;
    const payload = body({ forTest: false });
    if (existing && !Object.keys(payload).length) {
      status.textContent = "Nothing changed.";
      return;
    }
    busy(saveButton, async () => {
      status.textContent = "Saving…";
      try {
        let saved;
        if (existing) {
          ({ data: saved } = await call("PUT", `/v1/llms/${encodeURIComponent(existing.id)}`, {
            body: payload, headers: { "If-Match": String(existing.version) }, signal,
          }));
          if (payload.secret) noteRotation(saved.id, saved.updatedAt);
        } else {
          // Retry-safe: the same body keeps its Idempotency-Key; a changed body gets a new one.
          const text = JSON.stringify(payload);
          if (idempotency.body !== text) idempotency = { body: text, key: crypto.randomUUID() };
          ({ data: saved } = await call("POST", "/v1/llms", { body: payload, headers: { "Idempotency-Key": idempotency.key }, signal }));
        }
        c.key.value = "";
        announce(existing ? "Saved." : "LLM registered: it is being tested.");
        go(`#/llms/${encodeURIComponent(saved.id)}`);
      } catch (error) {
        if (error.code === "version_mismatch") status.textContent = "Someone changed this LLM meanwhile: reload the page and try again.";
        else if (!showServerErrors(error)) status.textContent = describeError(error);
        else status.textContent = "Fix the fields marked above.";
      }
    });
  });

  root.append(
    h("p", null, h("a", { href: "#/llms" }, "← All LLMs")),
    h("h1", null, existing ? `Edit ${existing.displayName}` : "New LLM"),
    h("p", { class: "muted" }, existing
      ? "Change what you need. A changed endpoint is tested again automatically."
      : "Register an endpoint that speaks the OpenAI, Azure OpenAI, Gemini, Anthropic or Groq API. It is tested automatically once saved; Test checks it now without saving."),
    form,
    testResult,
  );
}
