// API keys: list, create (the key is shown once, until Done), revoke with a confirmation.

import { call, currentKey, describeError } from "./api.js";
import { announce, confirmDialog, copyText, field, formatTime, h } from "./dom.js";

export async function renderApiKeys({ root, signal }) {
  const listSlot = h("div");
  const newKeySlot = h("div");
  const status = h("p", { role: "status", class: "muted" });
  const name = field({
    label: "Key name",
    control: h("input", { type: "text", autocomplete: "off", maxlength: 100 }),
    help: "What the key is for, e.g. “staging backend”.",
  });
  const create = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "panel", novalidate: true }, name.wrapper, h("div", { class: "actions" }, create), status);

  function signedInHint() {
    const key = currentKey() || "";
    return key ? `…${key.slice(-4)}` : null;
  }

  async function load() {
    const { data } = await call("GET", "/v1/api-keys", { signal });
    if (signal.aborted) return;
    const mine = signedInHint();
    const rows = data.data.map((key) => {
      const revoke = h("button", { type: "button", class: "secondary", "aria-label": `Revoke ${key.name}` }, "Revoke");
      revoke.addEventListener("click", () => revokeKey(key, key.hint === mine));
      return h(
        "tr",
        null,
        h("td", null, key.name, key.hint === mine ? h("span", { class: "tag" }, "this session") : null),
        h("td", { class: "mono" }, key.hint),
        h("td", null, formatTime(key.createdAt)),
        h("td", null, key.lastUsedAt ? formatTime(key.lastUsedAt) : "never"),
        h("td", null, revoke),
      );
    });
    listSlot.replaceChildren(
      h("div", { class: "table-scroll" },
        h("table", null,
          h("caption", null, `Your API keys (${data.data.length} of 10)`),
          h("thead", null, h("tr", null, ["Name", "Key", "Created", "Last used", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", null, rows))),
    );
  }

  async function revokeKey(key, isCurrent) {
    const yes = await confirmDialog({
      title: `Revoke ${key.name}?`,
      body: isCurrent
        ? "This is the key you are signed in with: you will be signed out. Anything else using it stops working within 10 seconds."
        : "Anything using this key stops working within 10 seconds. This cannot be undone.",
      confirmLabel: "Revoke key",
    });
    if (!yes) return;
    try {
      await call("DELETE", `/v1/api-keys/${encodeURIComponent(key.id)}`, { signal });
      status.textContent = `Key ${key.name} (${key.hint}) revoked.`;
      announce(status.textContent);
      await load();
    } catch (error) {
      status.textContent = describeError(error);
    }
  }

  function showNewKey(created) {
    const value = h("input", { type: "text", readOnly: true, value: created.key, "aria-label": "New API key", autocomplete: "off", spellcheck: "false" });
    const done = h("button", { type: "button" }, "Done");
    const copy = h("button", { type: "button", class: "secondary" }, "Copy key");
    copy.addEventListener("click", () => copyText(value.value, "The new key"));
    done.addEventListener("click", () => {
      value.value = "";
      newKeySlot.replaceChildren();
      name.control.focus();
    });
    newKeySlot.replaceChildren(
      h("section", { class: "notice ok", "aria-label": "New key" },
        h("p", null, h("strong", null, `Key “${created.name}” created. `), "Copy it now: it is shown only once, and leaves this page when you press Done."),
        h("div", { class: "new-key" }, value, copy, done)),
    );
    value.focus();
    value.select();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = name.control.value.trim();
    if (!label) {
      name.setError("Give the key a name.");
      name.control.focus();
      return;
    }
    name.setError("");
    create.disabled = true;
    try {
      const { data } = await call("POST", "/v1/api-keys", { body: { name: label }, signal });
      name.control.value = "";
      status.textContent = "";
      showNewKey(data);
      await load();
    } catch (error) {
      if (error.code === "api_key_limit_reached") name.setError(error.message);
      else status.textContent = describeError(error);
    } finally {
      create.disabled = false;
    }
  });
  signal.addEventListener("abort", () => newKeySlot.replaceChildren());

  root.append(
    h("h1", null, "API keys"),
    h("p", { class: "muted" }, "Account API keys sign in to the Lab and call the management API. An account holds up to 10; a revoked key stops working within 10 seconds."),
    form,
    newKeySlot,
    listSlot,
  );
  await load();
}
