// The Lab: a hash router over a handful of pages. Hash routes keep the server to one page and
// keep ids (never keys) in the URL.

import { call, currentKey, describeError, forgetKey, onUnauthorized, storeKey } from "./api.js";
import { announce, field, h } from "./dom.js";
import { renderApiKeys } from "./api_keys.js";
import { renderLlmForm } from "./llm_form.js";
import { renderLlmPage, forgetLlmState } from "./llm_page.js";
import { renderLlmList } from "./llms.js";

const main = () => document.getElementById("main");
let pageController = null;
let signInNotice = "";

const ROUTES = [
  [/^#\/llms\/?$/, () => renderLlmList],
  [/^#\/llms\/new$/, () => (ctx) => renderLlmForm(ctx, null)],
  [/^#\/llms\/([^/]+)\/edit$/, (m) => (ctx) => renderLlmForm(ctx, decodeURIComponent(m[1]))],
  [/^#\/llms\/([^/]+)$/, (m) => (ctx) => renderLlmPage(ctx, decodeURIComponent(m[1]))],
  [/^#\/api-keys$/, () => renderApiKeys],
];

function showShell(signedIn) {
  document.getElementById("main-nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  const section = (location.hash.match(/^#\/([a-z-]+)/) || [])[1] || "llms";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Navigate inside the Lab (adds a history entry). */
export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function focusHeading(root) {
  const heading = root.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

async function render() {
  if (pageController) pageController.abort();
  pageController = new AbortController();
  const root = main();
  root.replaceChildren();
  if (!currentKey()) {
    showShell(false);
    renderSignIn(root);
    return;
  }
  showShell(true);
  const hash = location.hash || "#/llms";
  const route = ROUTES.map(([pattern, make]) => [hash.match(pattern), make]).find(([m]) => m);
  if (!route) {
    go("#/llms");
    return;
  }
  const [match, make] = route;
  const page = make(match);
  const ctx = { root, signal: pageController.signal, go, focusHeading: () => focusHeading(root) };
  try {
    await page(ctx);
  } catch (error) {
    if (ctx.signal.aborted) return;
    root.append(h("p", { class: "notice bad", role: "alert" }, describeError(error)));
  }
  if (!ctx.signal.aborted && root.isConnected && !root.contains(document.activeElement)) focusHeading(root);
}

function renderSignIn(root) {
  const input = h("input", {
    type: "password",
    name: "api-key",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    required: true,
  });
  const keyField = field({
    label: "API key",
    control: input,
    help: "An account API key (llmgw_…). It stays in this browser tab only and is sent only to this gateway.",
  });
  const button = h("button", { type: "submit" }, "Sign in");
  const notice = h("p", { class: "notice", role: "status" }, signInNotice);
  signInNotice = "";
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    keyField.wrapper,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return keyField.setError("Enter your API key.");
    if (!key.startsWith("llmgw_")) return keyField.setError("An account API key starts with llmgw_.");
    keyField.setError("");
    button.disabled = true;
    try {
      await call("GET", "/v1/api-keys", { key });
      input.value = "";
      storeKey(key);
      announce("Signed in.");
      await render();
    } catch (error) {
      keyField.setError(
        error.status === 401 ? "This key was not accepted: it is wrong or has been revoked." : describeError(error),
      );
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  root.append(
    h("h1", null, "Sign in to the Lab"),
    h(
      "p",
      { class: "muted" },
      "Register your LLM, read what the automatic tests found, and chat with it. Running ",
      h("code", null, "make dev"),
      "? It prints a demo API key.",
    ),
    notice,
    form,
  );
  input.focus();
}

function signOut(message) {
  forgetKey();
  forgetLlmState();
  signInNotice = message;
  announce(message);
  if (location.hash && location.hash !== "#/llms") history.replaceState(null, "", "#/llms");
  render();
}

onUnauthorized(() => signOut("Your API key was refused (it may have been revoked). Sign in again."));

document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  focusHeading(main());
});
window.addEventListener("hashchange", () => render());
render();
