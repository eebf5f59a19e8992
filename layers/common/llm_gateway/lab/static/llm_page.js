// The LLM page: live status, the validation report, timings, Validate again, Delete, Try it, its
// requests and usage, snippets.

import { call, describeError } from "./api.js";
import { announce, badge, confirmDialog, formatTime, h } from "./dom.js";
import { chatSection, forgetSessionTokens } from "./chat.js";
import { healthSection } from "./health.js";
import { formatName } from "./llms.js";
import { reportRegion, rotationText, timingsFigure } from "./report.js";
import { requestsSection, usageSection } from "./requests.js";
import { snippetsSection } from "./snippets.js";

const POLL_MS = 1000;
const POLL_LIMIT_MS = 180_000;
const HISTORY = 5;
/** Reports seen in this tab, newest first, per LLM: the timings picture compares them. */
const seenReports = new Map();
/** Key rotations saved in this tab and not yet settled: llmId -> the update's updatedAt. */
const rotations = new Map();

export function noteRotation(llmId, since) {
  rotations.set(llmId, since || new Date().toISOString());
}

export function forgetLlmState() {
  seenReports.clear();
  rotations.clear();
  forgetSessionTokens();
}

function remember(llmId, report) {
  if (!report) return [];
  const list = seenReports.get(llmId) || [];
  if (!list.some((r) => r.checkedAt === report.checkedAt)) list.unshift(report);
  list.sort((a, b) => String(b.checkedAt).localeCompare(String(a.checkedAt)));
  seenReports.set(llmId, list.slice(0, HISTORY));
  return seenReports.get(llmId);
}

/** The latest report and the run still in progress: 200 {…report, pending}, 202 {pending run}, 404 nothing. */
async function validationState(llmId, signal) {
  try {
    const { data, status } = await call("GET", `/v1/llms/${encodeURIComponent(llmId)}/validation`, { signal });
    if (status === 202) return { report: null, pending: data };
    return { report: data, pending: data.pending || null };
  } catch (error) {
    if (error.status === 404) return { report: null, pending: null };
    throw error;
  }
}

function runText(run) {
  return run.status === "running" ? "Validation running: probing your endpoint…" : "Validation queued…";
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

export async function renderLlmPage({ root, signal, go }, llmId) {
  const path = `/v1/llms/${encodeURIComponent(llmId)}`;
  let llm = (await call("GET", path, { signal })).data;
  if (signal.aborted) return;
  const builtin = llm.isDefault;

  const statusLine = h("p", { class: "status-line", "aria-live": "polite" });
  const rotationNotice = h("p", { role: "status", class: "notice" });
  const facts = h("dl", { class: "facts" });
  const reportSlot = h("div");
  const timingsSlot = h("div");
  const actionStatus = h("p", { role: "status", class: "muted" });

  function renderHeader() {
    statusLine.replaceChildren(
      "Status: ", badge(llm.status), " ",
      h("span", { class: "muted" }, llm.validation && llm.validation.summary ? llm.validation.summary : ""),
    );
    const rows = [
      ["ID", h("span", { class: "mono" }, llm.id)],
      ["Format", formatName(llm.llmFormat)],
      ["URL", llm.urls.map((u) => h("div", { class: "mono" }, u.url))],
      ["Model", h("span", { class: "mono" }, llm.modelName)],
    ];
    if (llm.deploymentName) rows.push(["Deployment", llm.deploymentName]);
    if (llm.apiVersion) rows.push(["API version", llm.apiVersion]);
    if (!builtin) {
      rows.push(["Endpoint key", llm.secretHint || "—"], ["Version", String(llm.version)], ["Checked", formatTime(llm.validation && llm.validation.checkedAt)]);
    }
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
  }

  function renderReport(report) {
    reportSlot.replaceChildren(reportRegion(report, {
      empty: llm.status === "pending" ? "The automatic tests are running…" : "No report yet: use Validate again.",
    }));
    timingsSlot.replaceChildren(timingsFigure(remember(llmId, report)));
  }

  const validateButton = h("button", { type: "button", class: "secondary" }, "Validate again");
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete");
  /** The requested run this page waits for (asked here, or found pending), until it reports. */
  let awaited = null;
  /** The report on screen, the run the gateway says is in progress, and whether watch() polls. */
  let shown = null;
  let pending = null;
  let watching = false;
  function setBusy(busy) {
    validateButton.disabled = busy;
    if (busy) validateButton.setAttribute("aria-busy", "true");
    else validateButton.removeAttribute("aria-busy");
  }
  validateButton.addEventListener("click", async () => {
    setBusy(true);
    actionStatus.textContent = "Queueing a conformance run against your endpoint…";
    try {
      awaited = (await call("POST", `${path}/validate`, { signal })).data;
      actionStatus.textContent = runText(awaited);
      watch();
    } catch (error) {
      actionStatus.textContent = describeError(error);
      setBusy(false);
    }
  });
  deleteButton.addEventListener("click", async () => {
    const yes = await confirmDialog({
      title: `Delete ${llm.displayName}?`,
      body: "Its stored key is deleted too, and sessions using this LLM stop working. This cannot be undone.",
      confirmLabel: "Delete LLM",
    });
    if (!yes) return;
    try {
      await call("DELETE", path, { signal });
      announce(`${llm.displayName} deleted.`);
      go("#/llms");
    } catch (error) {
      actionStatus.textContent = describeError(error);
    }
  });

  renderHeader();
  const requests = requestsSection({ llmId: llm.id, signal });
  root.append(
    h("p", null, h("a", { href: "#/llms" }, "← All LLMs")),
    h("h1", null, llm.displayName),
    statusLine,
    builtin ? h("p", { class: "notice" }, "A built-in LLM: read-only. Try it and use the snippets below.") : rotationNotice,
    h("div", { class: "panel" }, facts),
    builtin ? null : healthSection({ llmId: llm.id, signal }),
    builtin ? null : h("div", { class: "actions" },
      h("a", { href: `#/llms/${encodeURIComponent(llm.id)}/edit`, class: "button secondary" }, "Edit"),
      validateButton, deleteButton, actionStatus),
    builtin ? null : reportSlot,
    builtin ? null : timingsSlot,
    chatSection({ llmId: llm.id, signal, onRequest: requests.noteOwn }),
    requests.region,
    usageSection({ llmId: llm.id, signal }),
    snippetsSection(llm.id),
  );
  if (builtin) return;

  ({ report: shown, pending } = await validationState(llmId, signal));
  renderReport(shown);
  if (rotations.has(llmId)) rotationNotice.textContent = "Testing the new key… the current key stays in service until it passes.";
  if (pending) {
    awaited = pending;
    setBusy(true);
    actionStatus.textContent = runText(pending);
  }

  // Until the status settles, a saved key rotation is decided and a requested run reports, poll by ourselves.
  async function watch() {
    if (watching) return;
    watching = true;
    try {
      const started = Date.now();
      while (!signal.aborted && Date.now() - started < POLL_LIMIT_MS && unsettled()) {
        await sleep(POLL_MS, signal);
        if (signal.aborted) return;
        await refresh();
      }
      if (awaited && !signal.aborted) setBusy(false); // gave up waiting: let the user ask again
    } catch (error) {
      if (!signal.aborted) actionStatus.textContent = describeError(error);
      setBusy(false);
    } finally {
      watching = false;
    }
  }

  function unsettled() {
    return llm.status === "pending" || rotations.has(llmId) || Boolean(pending) || Boolean(awaited);
  }

  async function refresh() {
    const before = llm.status;
    llm = (await call("GET", path, { signal })).data;
    const state = await validationState(llmId, signal);
    const report = state.report;
    pending = state.pending;
    const since = rotations.get(llmId);
    if (since && report && Date.parse(report.checkedAt) > Date.parse(since)) {
      rotations.delete(llmId);
      const rotation = rotationText(report);
      rotationNotice.textContent = rotation ? rotation.text : "The key was tested.";
      rotationNotice.className = `notice ${rotation && !rotation.ok ? "bad" : "ok"}`;
      announce(rotationNotice.textContent);
    }
    const newReport = (report && report.checkedAt) !== (shown && shown.checkedAt);
    if (llm.status !== before || newReport) {
      renderHeader();
      if (newReport) renderReport(report);
      shown = report;
      if (llm.status !== before) announce(`Status: ${llm.status}.`);
    }
    if (pending) {
      awaited = pending;
      setBusy(true);
      actionStatus.textContent = runText(pending);
    } else if (awaited) {
      // The run settled: its report, or a newer one, is the one shown now.
      const reported = report && (report.validationId === awaited.validationId
        || Date.parse(report.checkedAt) >= Date.parse(awaited.requestedAt));
      const text = reported ? `Validated: ${llm.status}.` : `Validation ${awaited.validationId} ended without a report; try again.`;
      actionStatus.textContent = text;
      announce(reported ? `Validation finished: ${llm.status}.` : text);
      awaited = null;
      setBusy(false);
    }
  }

  watch();
}
